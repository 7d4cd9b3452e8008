// The box office: sell seats at the counter in one step, print tickets, check tickets in.
import { api, currentUser, getIfChanged, showsOn } from "./api.js";
import { customerService } from "./customer-service.js";
import { SeatMap, legend } from "./seatmap.js";
import { sessionControls } from "./session.js";
import { ticketCards } from "./tickets.js";
import {
  $, chosenCinema, errorText, h, itemsOf, localDateTime, localTime, markCurrentShow, money, mount, newKey, notify,
} from "./ui.js";

const POLL_MS = 1500; // seats sold online appear within 2 s (304s while nothing changes)
const state = {
  cinemas: [], cinema: null, shows: [], show: null, seatMap: null, map: null, saleKey: null, selling: false,
  seatsEtag: null,
};
const session = sessionControls($("#session"), { onChange: loadCinemas });

/** The cinemas this user may sell for: a staff member's own, or all for an admin. */
async function loadCinemas() {
  const user = currentUser();
  if (!user || (user.role !== "staff" && user.role !== "admin")) {
    mount($("#cinema"), h("option", { value: "" }, "Log in as box-office staff"));
    notify($("#notice"), user ? "This terminal is for box-office staff." : "Log in to start selling.", "info");
    if (!user) session.openLogin();
    return;
  }
  try {
    const all = itemsOf(await api("/directory/cinemas"));
    state.cinemas = user.role === "admin" ? all : all.filter((c) => (user.cinemas || []).includes(c.id));
  } catch (err) {
    notify($("#notice"), errorText(err), "error");
    return;
  }
  mount($("#cinema"), state.cinemas.map((c) => h("option", { value: c.id }, `${c.name} (${c.city})`)));
  notify($("#notice"), state.cinemas.length ? "" : "You are not assigned to any cinema.", "info");
  onCinema();
}

function onCinema() {
  state.cinema = chosenCinema(state.cinemas);
  loadShows();
}

async function loadShows() {
  mount($("#shows"));
  if (!state.cinema) return;
  try {
    state.shows = await showsOn(state.cinema, $("#day").value);
  } catch (err) {
    notify($("#notice"), errorText(err), "error");
    return;
  }
  notify($("#notice"), state.shows.length ? "" : "No shows on this day.", "info");
  mount($("#shows"), state.shows.map((show) => h("li", {}, h("button", {
    type: "button", class: "btn secondary show-btn", dataset: { showId: show.id }, disabled: show.status === "canceled",
    "aria-label": `${localTime(show.starts_at, show.timezone)} ${show.movie_title} in ${show.hall_name}`,
    onclick: () => openShow(show),
  }, h("strong", {}, localTime(show.starts_at, show.timezone)), show.movie_title,
  h("small", {}, `${show.hall_name} · ${show.free_seats}/${show.seat_count} free`)))));
  const chosen = $("#only-show").value;
  mount($("#only-show"), h("option", { value: "" }, "Any show of this cinema"),
    state.shows.map((s) => h("option", { value: s.id, selected: s.id === chosen }, `${localTime(s.starts_at, s.timezone)} ${s.movie_title}`)));
}

async function openShow(show) {
  state.show = show;
  markCurrentShow(show);
  $("#sell-panel").hidden = false;
  $("#printed").hidden = true;
  $("#sell-title").textContent = `Sell seats: ${show.movie_title}`;
  $("#show-info").textContent = `${show.hall_name} · ${localDateTime(show.starts_at, show.timezone)}`;
  state.seatMap = new SeatMap($("#seatmap"), { onToggle: renderSelection, label: `Seats of ${show.hall_name}` });
  state.saleKey = null;
  await refresh(true);
  $("#only-show").value = show.id;
  await loadBookings();
}

async function refresh(first = false) {
  if (!state.show) return;
  try {
    const answer = await getIfChanged(`/shows/${encodeURIComponent(state.show.id)}/seats`, first ? null : state.seatsEtag);
    if (!answer.data) return; // 304: nothing moved since the last poll
    [state.map, state.seatsEtag] = [answer.data, answer.etag];
  } catch (err) {
    notify($("#sale-notice"), errorText(err), "error");
    return;
  }
  const lost = state.seatMap.update(state.map);
  if (first) mount($("#legend"), legend(state.map.seats, state.map.currency, { prices: state.show.prices }));
  if (lost.length) {
    notify($("#sale-notice"), `${lost.map((s) => `${s.row_label}${s.number}`).join(", ")} just went to another buyer.`, "error");
    renderSelection(state.seatMap.selectedSeats());
  }
}

/** The show's reservations (staff look-up), with cancel for held and confirmed ones. */
async function loadBookings() {
  $("#bookings-panel").hidden = false;
  let page;
  try {
    page = await api(`/shows/${encodeURIComponent(state.show.id)}/reservations?limit=200`);
  } catch (err) {
    notify($("#bookings-notice"), errorText(err), "error");
    return;
  }
  const items = itemsOf(page);
  notify($("#bookings-notice"), items.length ? "" : "No reservations yet.", "info");
  const headers = ["Reservation", "Channel", "Seats", "Amount", "Status", "Actions"];
  mount($("#bookings"), items.length ? h("table", { class: "data stack" },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((r) => h("tr", {}, [
      h("code", {}, r.id), r.channel, r.seats.map((x) => x.label).join(", "), money(r.amount_minor, r.currency),
      r.status,
      r.status === "held" || r.status === "confirmed"
        ? h("button", { type: "button", class: "btn danger", "aria-label": `Cancel reservation ${r.id}`, onclick: () => cancelBooking(r) }, "Cancel")
        : "",
    ].map((cell, i) => h("td", { "data-label": headers[i] }, cell)))))) : null);
}

async function cancelBooking(r) {
  if (!window.confirm(`Cancel reservation ${r.id} (${r.seats.map((x) => x.label).join(", ")})? A paid one is refunded.`)) return;
  let outcome;
  try {
    const done = await api(`/reservations/${encodeURIComponent(r.id)}/cancel`, { method: "POST", body: { reason: "canceled at the box office" } });
    if ($("#printed-info").textContent.endsWith(r.id)) $("#printed").hidden = true;
    outcome = [`Canceled${done.refund_minor ? `; refunded ${money(done.refund_minor, done.currency)}` : ""}.`, "ok"];
  } catch (err) {
    outcome = [errorText(err), "error"];
  }
  // Reload first: loadBookings resets the notice, and the outcome must outlive that.
  await Promise.all([loadBookings(), refresh()]);
  notify($("#bookings-notice"), ...outcome);
}

function renderSelection(seats) {
  const total = seats.reduce((sum, s) => sum + s.price_minor, 0);
  $("#selection").textContent = seats.length
    ? `${seats.length} seat${seats.length > 1 ? "s" : ""}: ${seats.map((s) => `${s.row_label}${s.number}`).join(", ")} · ${money(total, state.map.currency)}`
    : "No seats selected.";
  $("#sell").disabled = seats.length === 0;
  $("#sell").textContent = seats.length ? `Sell ${seats.length} for ${money(total, state.map.currency)}` : "Sell";
}

/** Sell the selected seats in one call; the key makes a double click or a retry sell once. */
async function sell(event) {
  event.preventDefault();
  const seatIds = [...state.seatMap.selected].sort((a, b) => a - b);
  const method = new FormData($("#sale-form")).get("method");
  const body = { seat_ids: seatIds, method };
  if (method === "card") body.card_number = $("#card").value;
  if ($("#email").value.trim()) body.customer_email = $("#email").value.trim();
  const signature = JSON.stringify(body);
  if (!state.saleKey || state.saleKey.signature !== signature) state.saleKey = { signature, key: newKey() };
  $("#sell").disabled = true;
  state.selling = true;
  try {
    const sale = await api(`/shows/${encodeURIComponent(state.show.id)}/sales`, {
      method: "POST", body, idempotencyKey: state.saleKey.key,
    });
    state.saleKey = null;
    notify($("#sale-notice"), `Sold: ${money(sale.amount_minor, sale.currency)} by ${sale.payment.method}.`, "ok");
    $("#printed").hidden = false;
    $("#printed-info").textContent = `Reservation ${sale.reservation_id}`;
    mount($("#tickets"), ticketCards(sale.reservation_id, sale.tickets, { show: state.show, currency: sale.currency }));
    state.seatMap.setSelected([]);
    $("#email").value = "";
    loadBookings();
  } catch (err) {
    notify($("#sale-notice"), err.code === "payment_failed"
      ? `Card refused (${err.body.reason || "declined"}); nothing was sold.` : errorText(err), "error");
  } finally {
    state.selling = false;
    await refresh();
    renderSelection(state.seatMap.selectedSeats());
  }
}

/** Check a ticket in and show a big verdict: valid, already used (when), or refused. */
async function checkIn(event) {
  event.preventDefault();
  if (!state.cinema) return;
  const body = { code: $("#code").value.trim() };
  if ($("#only-show").value) body.show_id = $("#only-show").value;
  const tz = state.cinema.timezone;
  try {
    const ticket = await api(`/cinemas/${encodeURIComponent(state.cinema.id)}/tickets/validate`, { method: "POST", body });
    verdict("ok", "VALID: let them in", `Seat ${ticket.seat_label} (${ticket.seat_type}), show at ${localDateTime(ticket.starts_at, tz)}.`);
  } catch (err) {
    const used = err.code === "ticket_already_used";
    const titles = {
      ticket_already_used: "ALREADY USED", wrong_show: "WRONG SHOW", wrong_cinema: "WRONG CINEMA",
      ticket_not_found: "UNKNOWN TICKET", ticket_canceled: "CANCELED TICKET", too_early: "TOO EARLY",
      show_over: "SHOW IS OVER",
    };
    // A malformed code is refused by validation (the API keeps `validation_error`): staff get words, not a regex.
    if (err.code === "validation_error") {
      verdict("bad", "NOT A TICKET CODE", "This is not a ticket code. Scan the QR code again or type the code printed under it.");
      $("#code").select();
      return;
    }
    let detail = used ? `Checked in at ${localDateTime(err.body.used_at, tz)}.` : errorText(err);
    if (err.code === "too_early" && err.body.starts_at) detail += ` (show at ${localDateTime(err.body.starts_at, tz)})`;
    verdict(used ? "used" : "bad", titles[err.code] || "REFUSED", detail);
  }
  $("#code").select();
}

function verdict(kind, title, detail) {
  mount($("#verdict"), h("div", { class: `verdict ${kind}` }, title, h("div", { class: "hint" }, detail)));
}

function showPage(name) {
  $("#page-sell").hidden = name !== "sell";
  $("#page-checkin").hidden = name !== "checkin";
  $("#page-customers").hidden = name !== "customers";
  for (const [id, page] of [["#nav-sell", "sell"], ["#nav-checkin", "checkin"], ["#nav-customers", "customers"]]) {
    $(id).removeAttribute("aria-current");
    if (page === name) $(id).setAttribute("aria-current", "page");
  }
  if (name === "checkin") $("#code").focus();
}

$("#cinema").addEventListener("change", onCinema);
$("#day").addEventListener("change", loadShows);
$("#sale-form").addEventListener("submit", sell);
$("#checkin-form").addEventListener("submit", checkIn);
$("#bookings-refresh").addEventListener("click", loadBookings);
$("#nav-sell").addEventListener("click", () => showPage("sell"));
$("#nav-checkin").addEventListener("click", () => showPage("checkin"));
$("#nav-customers").addEventListener("click", () => showPage("customers"));
customerService($("#customers-panel"));
document.querySelectorAll("input[name=method]").forEach((radio) => radio.addEventListener("change", () => {
  $("#card").disabled = new FormData($("#sale-form")).get("method") !== "card";
}));
setInterval(() => {
  if (!document.hidden && !$("#sell-panel").hidden && !state.selling) refresh();
}, POLL_MS);
loadCinemas();
