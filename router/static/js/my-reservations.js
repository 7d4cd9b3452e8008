// "My reservations": the signed-in customer's reservations in every region, grouped upcoming /
// past / canceled, each with its cinema, city, hall and local time (zone named), tickets,
// release (held) and cancel (confirmed, only while the API would accept it, with the refund).
import { api, currentUser } from "./api.js";
import { ticketCards } from "./tickets.js";
import { $, errorText, h, itemsOf, localDateTime, money, mount, notify } from "./ui.js";

// REGIONAL_CANCEL_CUTOFF_MINUTES' default: the API refuses a cancel closer to the show.
export const CANCEL_CUTOFF_MINUTES = 60;
let context = { cinemas: [], openLogin: () => {} };
const shows = new Map(); // show id -> ShowRead (hall, cinema, city, timezone), fetched once

/** Show the signed-in customer's reservations in every region (the router's fan-out). */
export async function loadMine(ctx) {
  context = ctx;
  if (!currentUser()) {
    notify($("#mine-notice"), "Log in to see your reservations.", "info");
    mount($("#mine"));
    context.openLogin();
    return;
  }
  notify($("#mine-notice"), "Loading…", "info");
  let body;
  try {
    body = await api("/me/reservations?limit=200");
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
    return;
  }
  const items = itemsOf(body);
  await loadShows(items);
  const missing = body.unavailable_regions || [];
  notify($("#mine-notice"), missing.length
    ? `Some regions did not answer (${missing.join(", ")}); their reservations are not shown.` : "", "warn");
  mount($("#mine"), items.length ? groups(items) : h("p", {}, "No reservations yet."));
}

/** Read each listed show once (public, parallel): the hall, cinema, city and zone of a row. */
async function loadShows(items) {
  const wanted = [...new Set(items.map((r) => r.show_id))].filter((id) => !shows.has(id));
  await Promise.all(wanted.map(async (id) => {
    try {
      shows.set(id, await api(`/shows/${encodeURIComponent(id)}`, { auth: false }));
    } catch {
      // A region that stopped answering: the row falls back to the directory's cinema.
    }
  }));
}

/** Upcoming (soonest first), past (latest first) and canceled or expired (folded). */
function groups(items) {
  const now = Date.now();
  const over = (r) => Date.parse(r.show_starts_at) < now;
  const live = items.filter((r) => r.status === "held" || r.status === "confirmed");
  const upcoming = live.filter((r) => !over(r)).sort((a, b) => a.show_starts_at.localeCompare(b.show_starts_at));
  const past = live.filter(over).sort((a, b) => b.show_starts_at.localeCompare(a.show_starts_at));
  const dropped = items.filter((r) => !live.includes(r));
  const section = (title, rows, open = true) => {
    const table = rows.length ? reservationTable(rows) : h("p", { class: "muted" }, "None.");
    const heading = `${title} (${rows.length})`;
    return open
      ? h("section", { class: "mine-group" }, h("h3", {}, heading), table)
      : h("details", { class: "mine-group" }, h("summary", {}, heading), table);
  };
  return [section("Upcoming", upcoming), section("Past", past, past.length <= 3),
    section("Canceled or expired", dropped, false)];
}

function placeOf(r) {
  const show = shows.get(r.show_id);
  const cinema = context.cinemas.find((c) => c.id === r.cinema_id);
  return {
    cinema: show?.cinema_name || cinema?.name || r.cinema_id,
    city: show?.city || cinema?.city || "",
    hall: show?.hall_name || "",
    timezone: show?.timezone || cinema?.timezone || "UTC",
  };
}

/** "Sat 21 Nov, 20:15 (Paris time, UTC+1)": the cinema's local time, its zone named. */
export function zonedWhen(iso, timezone) {
  const offset = new Intl.DateTimeFormat("en-GB", { timeZone: timezone, timeZoneName: "shortOffset" })
    .formatToParts(new Date(iso)).find((p) => p.type === "timeZoneName")?.value || timezone;
  const city = timezone.split("/").pop().replace(/_/g, " ");
  return `${localDateTime(iso, timezone)} (${city} time, ${offset.replace("GMT", "UTC")})`;
}

function reservationTable(items) {
  const headers = ["Movie", "Cinema", "When (local)", "Seats", "Total", "Status", "Actions"];
  const cells = (r) => {
    const place = placeOf(r);
    return [
      r.movie_title || r.show_id,
      [h("div", {}, `${place.cinema}, ${place.city}`), place.hall ? h("small", { class: "muted" }, place.hall) : null],
      zonedWhen(r.show_starts_at, place.timezone),
      (r.seats || []).map((s) => s.label).join(", "),
      money(r.amount_minor, r.currency) + (r.refund_minor ? ` (refunded ${money(r.refund_minor, r.currency)})` : ""),
      h("span", { class: `badge ${r.status === "confirmed" ? "ok" : r.status === "held" ? "warn" : "bad"}` }, r.status),
      reservationButtons(r),
    ];
  };
  return h("table", { class: "data stack" },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((r) => h("tr", {},
      cells(r).map((cell, i) => h("td", { "data-label": headers[i] }, cell))))));
}

/** Whether the API would accept a cancel now: confirmed, and the show more than the cutoff away. */
export function cancelable(r, now = Date.now()) {
  return r.status === "confirmed" && Date.parse(r.show_starts_at) - now > CANCEL_CUTOFF_MINUTES * 60000;
}

function reservationButtons(r) {
  const out = [];
  if (r.status === "held") {
    out.push(h("button", { type: "button", class: "btn secondary", onclick: () => releaseListed(r) }, "Release"));
  }
  if (r.status === "confirmed") {
    out.push(h("button", { type: "button", class: "btn secondary", onclick: () => viewTickets(r) }, "Tickets"));
  }
  if (cancelable(r)) {
    const refund = money(r.amount_minor, r.currency);
    out.push(h("button", {
      type: "button", class: "btn danger", "aria-label": `Cancel reservation ${r.movie_title || r.id} and get ${refund} back`,
      onclick: () => cancel(r),
    }, `Cancel (refund ${refund})`));
  } else if (r.status === "confirmed" && Date.parse(r.show_starts_at) > Date.now()) {
    out.push(h("small", { class: "muted" }, `No cancel within ${CANCEL_CUTOFF_MINUTES} min of the show`));
  }
  return out;
}

async function releaseListed(r) {
  try {
    await api(`/reservations/${encodeURIComponent(r.id)}/release`, { method: "POST" });
    await loadMine(context);
    notify($("#mine-notice"), "Seats released.", "ok");
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
  }
}

async function viewTickets(r) {
  try {
    const list = await api(`/reservations/${encodeURIComponent(r.id)}/tickets`);
    const node = h("div", { class: "tickets" }, ticketCards(r.id, list.tickets || [], { currency: r.currency }));
    mount($("#mine"), h("button", { type: "button", class: "btn secondary", onclick: () => loadMine(context) }, "Back to list"), node);
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
  }
}

async function cancel(r) {
  const refund = money(r.amount_minor, r.currency);
  if (!window.confirm(`Cancel ${r.movie_title || "this reservation"}? ${refund} is refunded.`)) return;
  try {
    const done = await api(`/reservations/${encodeURIComponent(r.id)}/cancel`, { method: "POST" });
    await loadMine(context);
    notify($("#mine-notice"), `Reservation canceled; ${money(done?.refund_minor ?? r.amount_minor, r.currency)} is on its way back.`, "ok");
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
  }
}
