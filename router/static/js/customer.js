// The customer app: find a show, pick seats, hold, pay, see tickets and reservations.
import { api, currentUser, getIfChanged, showsOn } from "./api.js";
import { SeatMap, legend } from "./seatmap.js";
import { loadMine } from "./my-reservations.js";
import { sessionControls } from "./session.js";
import { ticketCards } from "./tickets.js";
import { WaitingRoom, admissionHeaders } from "./waiting-room.js";
import {
  $, chosenCinema, errorText, h, isoDay, itemsOf, localDateTime, localTime, markCurrentShow, money, mount, newKey, notify,
} from "./ui.js";

// Seats others take appear within 2 s: a poll is a 304 without a body when nothing changed.
const POLL_MS = 1500;
const state = {
  cinemas: [], cinema: null, shows: [], show: null, seatMap: null, map: null,
  reservation: null, holdKey: null, payKey: null, poll: null, tick: null, pending: null, seatsEtag: null,
};
const session = sessionControls($("#session"), { allowRegister: true, onChange: onAuthChange });
const room = new WaitingRoom($("#waiting-room"), {
  onAdmitted: showPicker,
  onSoldOut: () => { $("#picker").hidden = true; },
  needLogin: (then) => { state.pending = then; session.openLogin(); },
});

function onAuthChange(user) {
  if (!user && !$("#page-mine").hidden) showPage("book");
  // Logging in from "My reservations" shows them at once (no tab switch needed).
  if (user && !$("#page-mine").hidden) loadMine({ cinemas: state.cinemas, openLogin: session.openLogin });
  const pending = state.pending;
  state.pending = null;
  if (user && pending) pending();
}

/** Load the directory's cinemas and fill the city list. */
async function loadCities() {
  try {
    state.cinemas = itemsOf(await api("/directory/cinemas", { auth: false }));
  } catch (err) {
    notify($("#find-notice"), `Cannot load cinemas: ${errorText(err)}`, "error");
    return;
  }
  const cities = [...new Set(state.cinemas.map((c) => c.city))].sort();
  mount($("#city"), h("option", { value: "" }, "Choose a city"),
    cities.map((city) => h("option", { value: city }, city)));
}

function onCity() {
  const city = $("#city").value;
  const cinemas = state.cinemas.filter((c) => c.city === city);
  mount($("#cinema"), h("option", { value: "" }, city ? "Choose a cinema" : "Choose a city first"),
    cinemas.map((c) => h("option", { value: c.id }, c.name)));
  $("#cinema").disabled = !city;
  if (cinemas.length === 1) {
    $("#cinema").value = cinemas[0].id;
    onCinema();
  }
}

function onCinema() {
  state.cinema = chosenCinema(state.cinemas);
  loadShows();
}

let showsAsked = 0;

/** Load the chosen cinema's shows of the chosen day. */
async function loadShows() {
  mount($("#shows"));
  if (!state.cinema) return;
  const day = $("#day").value || isoDay(0, state.cinema.timezone);
  // A later choice of cinema or day wins, even if an earlier answer arrives after it.
  const asked = ++showsAsked;
  notify($("#find-notice"), "Loading shows…", "info");
  let shows;
  try {
    shows = await showsOn(state.cinema, day);
  } catch (err) {
    if (asked === showsAsked) notify($("#find-notice"), `Cannot load shows: ${errorText(err)}`, "error");
    return;
  }
  if (asked !== showsAsked) return;
  state.shows = shows.filter((s) => s.status !== "canceled");
  notify($("#find-notice"), state.shows.length ? "" : "No shows on this day. Try another date.", "info");
  const movies = new Map(state.shows.map((s) => [s.movie_id, s.movie_title]));
  const chosen = $("#movie").value;
  mount($("#movie"), h("option", { value: "" }, "All movies"),
    [...movies].map(([id, title]) => h("option", { value: id, selected: id === chosen }, title)));
  $("#movie").disabled = movies.size === 0;
  renderShows();
}

function renderShows() {
  const movie = $("#movie").value;
  renderShowList(state.shows.filter((s) => !movie || s.movie_id === movie), false);
}

function renderShowList(shows, withPlace) {
  mount($("#shows"), shows.map((show) => h("li", {}, h("button", {
    type: "button", class: "btn secondary show-btn", dataset: { showId: show.id },
    "aria-label": `${show.movie_title} at ${localTime(show.starts_at, show.timezone)} in ${show.hall_name}${withPlace ? `, ${show.cinema_name}, ${show.city}` : ""}, ${show.free_seats} seats free`,
    onclick: () => openShow(show),
  }, h("strong", {}, withPlace ? localDateTime(show.starts_at, show.timezone) : localTime(show.starts_at, show.timezone)),
  show.movie_title,
  h("small", {}, `${withPlace ? `${show.city}, ${show.cinema_name} · ` : ""}${show.hall_name} · ${show.free_seats} free`)))));
}

/** Search upcoming shows of a movie in every region (the router's fan-out). */
async function searchEverywhere(event) {
  event.preventDefault();
  const q = $("#search-q").value.trim();
  if (!q) return;
  const query = new URLSearchParams({ q, date_from: isoDay(0), limit: "50" });
  notify($("#find-notice"), "Searching every region…", "info");
  try {
    const body = await api(`/search/shows?${query}`);
    const shows = itemsOf(body).filter((s) => s.status !== "canceled" && Date.parse(s.starts_at) > Date.now());
    const missing = body.unavailable_regions || [];
    notify($("#find-notice"), [
      shows.length ? `${shows.length} upcoming shows of "${q}".` : `No upcoming shows of "${q}".`,
      missing.length ? `Regions not answering: ${missing.join(", ")}.` : "",
    ].join(" "), missing.length ? "warn" : "info");
    renderShowList(shows, true);
  } catch (err) {
    notify($("#find-notice"), errorText(err), "error");
  }
}

/** Open the seat map of a show and start polling it. */
async function openShow(show) {
  state.show = show;
  markCurrentShow(show);
  state.reservation = null;
  $("#checkout").hidden = true;
  $("#tickets-panel").hidden = true;
  $("#seats-panel").hidden = false;
  $("#seats-title").textContent = `Choose your seats: ${show.movie_title}`;
  $("#show-info").textContent = `${show.cinema_name}, ${show.hall_name} · ${localDateTime(show.starts_at, show.timezone)} (local time) · ${show.duration_minutes} min`;
  state.seatMap = new SeatMap($("#seatmap"), { onToggle: renderSelection, label: `Seats of ${show.hall_name}` });
  history.replaceState(null, "", `#show=${encodeURIComponent(show.id)}`);
  notify($("#seat-notice"), "");
  $("#picker").hidden = true;
  $("#seats-panel").scrollIntoView({ block: "start" });
  await room.enter(show);
}

/** The seats may be picked: no waiting room, or this customer was admitted. */
async function showPicker() {
  $("#picker").hidden = false;
  await refreshSeats(true);
  startPolling();
}

async function refreshSeats(first = false, quiet = false) {
  if (!state.show) return;
  let map;
  try {
    const known = first ? null : state.seatsEtag;
    const path = `/shows/${encodeURIComponent(state.show.id)}/seats`;
    const answer = await getIfChanged(path, known, admissionHeaders(state.show.id));
    if (!answer.data) return; // 304: nothing moved since the last poll
    [map, state.seatsEtag] = [answer.data, answer.etag];
  } catch (err) {
    notify($("#seat-notice"), `Cannot load seats: ${errorText(err)}`, "error");
    return;
  }
  state.map = map;
  const lost = state.seatMap.update(map);
  if (first) mount($("#legend"), legend(map.seats, map.currency, { prices: state.show.prices }));
  renderBestPrice();
  if (lost.length && !quiet) {
    notify($("#seat-notice"), `Sorry, ${lost.map(seatName).join(", ")} ${lost.length > 1 ? "were" : "was"} just taken by someone else.`, "error");
    renderSelection(state.seatMap.selectedSeats());
  }
}

function startPolling() {
  clearInterval(state.poll);
  let busy = false;
  state.poll = setInterval(async () => {
    if (busy || document.hidden || $("#seats-panel").hidden) return;
    busy = true;
    try {
      await refreshSeats();
    } finally {
      busy = false;
    }
  }, POLL_MS);
}

const seatName = (seat) => `${seat.row_label}${seat.number}`;
const BEST_TYPES = ["standard", "premium", "vip", "wheelchair", "companion"];
const typeName = (type) => (type === "vip" ? "VIP" : type.charAt(0).toUpperCase() + type.slice(1));

/** Whether `count` free seats of `type` sit side by side (no aisle between) in some row. */
export function hasBlock(seats, type, count) {
  const rows = new Map();
  for (const seat of seats) {
    if (seat.seat_type !== type || seat.status !== "free") continue;
    if (!rows.has(seat.grid_row)) rows.set(seat.grid_row, []);
    rows.get(seat.grid_row).push(seat.grid_col);
  }
  for (const cols of rows.values()) {
    cols.sort((a, b) => a - b);
    let run = 0;
    for (let i = 0; i < cols.length; i += 1) {
      run = i && cols[i] === cols[i - 1] + 1 ? run + 1 : 1;
      if (run >= count) return true;
    }
  }
  return false;
}

/** What "Hold best seats" would hold: the chosen type, or for "Any" the cheapest with a block. */
function bestPlan() {
  if (!state.map) return null;
  const count = Number($("#best-count").value);
  const prices = state.show.prices || {};
  const chosen = $("#best-type").value;
  // Accessibility seats only when asked for by type, as the API's "Any" does.
  const candidates = chosen ? [chosen] : Object.keys(prices)
    .filter((t) => t !== "wheelchair" && t !== "companion")
    .sort((a, b) => prices[a] - prices[b]);
  const type = candidates.find((t) => hasBlock(state.map.seats, t, count));
  return type ? { type, count, unit: prices[type], total: prices[type] * count } : null;
}

/** The type options with their prices, and the price of the current choice, before holding. */
function renderBestPrice() {
  const prices = state.show?.prices || {};
  const chosen = $("#best-type").value;
  const types = BEST_TYPES.filter((t) => t in prices);
  mount($("#best-type"), h("option", { value: "" }, "Any: the cheapest with seats together"),
    types.map((t) => h("option", { value: t, selected: t === chosen }, `${typeName(t)} ${money(prices[t], state.map?.currency || "")}`)));
  const plan = bestPlan();
  $("#best-price").textContent = plan
    ? `${plan.count} × ${typeName(plan.type)} at ${money(plan.unit, state.map.currency)} = ${money(plan.total, state.map.currency)}`
    : "No block of that many seats together is free for this choice.";
  $("#best-submit").textContent = plan ? `Hold best seats (${money(plan.total, state.map.currency)})` : "Hold best seats";
}

function renderSelection(seats) {
  const total = seats.reduce((sum, s) => sum + s.price_minor, 0);
  $("#selection").textContent = seats.length
    ? `${seats.length} seat${seats.length > 1 ? "s" : ""}: ${seats.map(seatName).join(", ")} · total ${money(total, state.map.currency)}`
    : "No seats selected.";
  $("#hold").disabled = seats.length === 0;
}

async function needLogin(then) {
  if (currentUser()) return false;
  state.pending = then;
  notify($("#seat-notice"), "Please log in (or create an account) to hold seats.", "info");
  session.openLogin();
  return true;
}

/** Hold the selected seats (one Idempotency-Key per selection, so a retry has one effect). */
async function holdSelected() {
  if (await needLogin(holdSelected)) return;
  const ids = [...state.seatMap.selected].sort((a, b) => a - b);
  const key = state.holdKey && state.holdKey.ids === ids.join(",") ? state.holdKey.key : newKey();
  state.holdKey = { ids: ids.join(","), key };
  await hold(`/shows/${encodeURIComponent(state.show.id)}/holds`, { seat_ids: ids }, key);
}

async function holdBest(event) {
  event?.preventDefault();
  if (await needLogin(holdBest)) return;
  const plan = bestPlan();
  if (!plan) {
    notify($("#seat-notice"), "No block of that many seats together is free. Try fewer seats or another type.", "error");
    return;
  }
  // "Any" is resolved here to the cheapest type with a block: the API never picks pricier seats.
  const body = { count: plan.count, seat_type: plan.type };
  await hold(`/shows/${encodeURIComponent(state.show.id)}/best-available`, body, newKey());
}

async function hold(path, body, key) {
  $("#hold").disabled = true;
  notify($("#seat-notice"), "Holding your seats…", "info");
  try {
    const headers = admissionHeaders(state.show.id);
    const reservation = await api(path, { method: "POST", body, idempotencyKey: key, headers });
    state.holdKey = null;
    notify($("#seat-notice"), "");
    startCheckout(reservation);
  } catch (err) {
    if (err.code === "queue_required") {
      notify($("#seat-notice"), "This show sells through its waiting room: your place is being checked.", "info");
      await room.enter(state.show);
      return;
    }
    const taken = err.code === "seats_taken";
    notify($("#seat-notice"), taken
      ? `Sorry, these seats were just taken: ${(err.body.seats || []).join(", ") || "someone was faster"}. Please choose other seats.`
      : errorText(err), "error");
    await refreshSeats(false, true);
    renderSelection(state.seatMap.selectedSeats());
  }
}

function startCheckout(reservation) {
  state.reservation = reservation;
  state.payKey = newKey();
  state.seatMap.setMine((reservation.seats || []).map((s) => s.seat_id));
  state.seatMap.setSelected([]);
  refreshSeats();
  $("#checkout").hidden = false;
  const seats = (reservation.seats || []).map((s) => `${s.label} (${s.seat_type})`).join(", ");
  $("#hold-summary").textContent = `${state.show.movie_title}, ${localDateTime(state.show.starts_at, state.show.timezone)}. Seats: ${seats}. Total ${money(reservation.amount_minor, reservation.currency)}.`;
  notify($("#pay-notice"), "");
  startCountdown();
  $("#checkout").scrollIntoView({ block: "start" });
  $("#card").focus();
}

function startCountdown() {
  clearInterval(state.tick);
  const draw = () => {
    const left = Math.max(0, Math.round((Date.parse(state.reservation.hold_expires_at) - Date.now()) / 1000));
    const text = `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
    $("#countdown").textContent = left ? text : "expired";
    $("#countdown").classList.toggle("low", left < 60);
    if (!left) {
      clearInterval(state.tick);
      notify($("#pay-notice"), "Your hold has expired. You can still try to pay while the seats are free.", "warn");
    }
  };
  draw();
  state.tick = setInterval(draw, 1000);
}

async function pay(event) {
  event.preventDefault();
  const method = new FormData($("#pay-form")).get("method");
  const body = { method };
  if (method === "card") body.card_number = $("#card").value;
  $("#pay").disabled = true;
  notify($("#pay-notice"), "Paying…", "info");
  try {
    const outcome = await api(`/reservations/${encodeURIComponent(state.reservation.id)}/payments`, {
      method: "POST", body, idempotencyKey: state.payKey,
    });
    if (outcome.payment && outcome.payment.status === "pending") {
      await awaitPayment(state.reservation.id);
    } else {
      showTickets(outcome.tickets || [], state.reservation.currency);
    }
  } catch (err) {
    state.payKey = newKey();
    const failed = err.code === "payment_failed";
    notify($("#pay-notice"), failed
      ? `Payment failed (${err.body.reason || "refused"}). Nothing was charged and your seats are still held: try another card.`
      : errorText(err), "error");
  } finally {
    $("#pay").disabled = false;
  }
}

// A 202 means the provider has not answered yet (a retried click, or a replica that went away):
// the payment settles on the server by itself, so watch the reservation until it does.
async function awaitPayment(reservationId) {
  notify($("#pay-notice"), "Your payment is being confirmed…", "info");
  const path = `/reservations/${encodeURIComponent(reservationId)}`;
  for (let attempt = 0; attempt < 60; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const tickets = await api(`${path}/tickets`);
    if (tickets.status === "confirmed") {
      showTickets(tickets.tickets, state.reservation.currency);
      return;
    }
    const payments = await api(`${path}/payments`);
    const last = payments[payments.length - 1];
    if (last && last.status !== "pending") {
      notify($("#pay-notice"), "The payment did not go through and nothing stays charged: try again.", "error");
      state.payKey = newKey();
      return;
    }
  }
  notify($("#pay-notice"), "The payment is still being confirmed: check My reservations in a minute.", "warn");
}

function showTickets(tickets, currency) {
  clearInterval(state.tick);
  $("#checkout").hidden = true;
  $("#tickets-panel").hidden = false;
  $("#tickets-info").textContent = `Paid. Show this code at the entrance. Reservation ${state.reservation.id}.`;
  mount($("#tickets"), ticketCards(state.reservation.id, tickets, { show: state.show, currency }));
  refreshSeats();
  $("#tickets-panel").scrollIntoView({ block: "start" });
}

async function reservationAction(action, message) {
  try {
    const updated = await api(`/reservations/${encodeURIComponent(state.reservation.id)}/${action}`, { method: "POST" });
    if (action === "extend" && updated) {
      state.reservation = { ...state.reservation, ...updated };
      startCountdown();
    }
    notify($("#pay-notice"), message, "ok");
    return true;
  } catch (err) {
    notify($("#pay-notice"), errorText(err), "error");
    return false;
  }
}

async function release() {
  if (!(await reservationAction("release", "Seats released."))) return;
  clearInterval(state.tick);
  $("#checkout").hidden = true;
  state.seatMap.setMine([]);
  refreshSeats();
}

function showPage(name) {
  $("#page-book").hidden = name !== "book";
  $("#page-mine").hidden = name !== "mine";
  $("#nav-book").toggleAttribute("aria-current", name === "book");
  $("#nav-mine").toggleAttribute("aria-current", name === "mine");
  if (name === "book") $("#nav-book").setAttribute("aria-current", "page");
  if (name === "mine") {
    $("#nav-mine").setAttribute("aria-current", "page");
    loadMine({ cinemas: state.cinemas, openLogin: session.openLogin });
  }
}

$("#city").addEventListener("change", onCity);
$("#cinema").addEventListener("change", onCinema);
$("#day").addEventListener("change", loadShows);
$("#movie").addEventListener("change", renderShows);
$("#hold").addEventListener("click", holdSelected);
$("#clear").addEventListener("click", () => state.seatMap && state.seatMap.setSelected([]));
$("#best-form").addEventListener("submit", holdBest);
$("#best-count").addEventListener("change", renderBestPrice);
$("#best-type").addEventListener("change", renderBestPrice);
$("#search-form").addEventListener("submit", searchEverywhere);
$("#pay-form").addEventListener("submit", pay);
$("#release").addEventListener("click", release);
$("#extend").addEventListener("click", () => reservationAction("extend", "Your hold was extended."));
$("#nav-book").addEventListener("click", () => showPage("book"));
$("#nav-mine").addEventListener("click", () => showPage("mine"));
document.querySelectorAll("input[name=method]").forEach((radio) => radio.addEventListener("change", () => {
  $("#card").disabled = new FormData($("#pay-form")).get("method") !== "card";
}));
loadCities().then(openLinkedShow);

/** Open the show named in the address (`#show=<id>`), so a seat map can be bookmarked or shared. */
async function openLinkedShow() {
  const match = location.hash.match(/^#show=([\w-]+)$/);
  if (!match) return;
  try {
    await openShow(await api(`/shows/${encodeURIComponent(match[1])}`));
  } catch (err) {
    notify($("#find-notice"), `That show cannot be opened: ${errorText(err)}`, "error");
  }
}
