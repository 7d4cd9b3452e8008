// "My reservations": the signed-in customer's reservations in every region, with tickets,
// release (held) and cancel (confirmed).
import { api, currentUser } from "./api.js";
import { ticketCards } from "./tickets.js";
import { $, errorText, h, itemsOf, localDateTime, money, mount, notify } from "./ui.js";

let context = { cinemas: [], openLogin: () => {} };

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
    body = await api("/me/reservations");
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
    return;
  }
  const missing = body.unavailable_regions || [];
  notify($("#mine-notice"), missing.length
    ? `Some regions did not answer (${missing.join(", ")}); their reservations are not shown.` : "", "warn");
  const items = itemsOf(body);
  mount($("#mine"), items.length ? reservationTable(items) : h("p", {}, "No reservations yet."));
}

function reservationTable(items) {
  const headers = ["Show", "When", "Seats", "Total", "Status", "Actions"];
  const cells = (r) => [
    r.movie_title || r.show_id,
    r.show_starts_at ? localDateTime(r.show_starts_at, zoneOf(r.cinema_id)) : "",
    (r.seats || []).map((s) => s.label).join(", "),
    r.amount_minor !== undefined ? money(r.amount_minor, r.currency) : "",
    h("span", { class: `badge ${r.status === "confirmed" ? "ok" : r.status === "held" ? "warn" : "bad"}` }, r.status),
    reservationButtons(r),
  ];
  return h("table", { class: "data stack" },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((r) => h("tr", {},
      cells(r).map((cell, i) => h("td", { "data-label": headers[i] }, cell))))));
}

const zoneOf = (cinemaId) => context.cinemas.find((c) => c.id === cinemaId)?.timezone || "UTC";

function reservationButtons(r) {
  const out = [];
  if (r.status === "held") {
    out.push(h("button", { type: "button", class: "btn secondary", onclick: () => releaseListed(r) }, "Release"));
  }
  if (r.status === "confirmed") {
    out.push(h("button", { type: "button", class: "btn secondary", onclick: () => viewTickets(r) }, "Tickets"));
    out.push(h("button", { type: "button", class: "btn danger", "aria-label": `Cancel reservation ${r.movie_title || r.id}`, onclick: () => cancel(r) }, "Cancel"));
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
    const node = h("div", { class: "tickets" }, ticketCards(list.tickets || [], { currency: r.currency }));
    mount($("#mine"), h("button", { type: "button", class: "btn secondary", onclick: () => loadMine(context) }, "Back to list"), node);
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
  }
}

async function cancel(r) {
  if (!window.confirm(`Cancel ${r.movie_title || "this reservation"}? The payment is refunded.`)) return;
  try {
    await api(`/reservations/${encodeURIComponent(r.id)}/cancel`, { method: "POST" });
    await loadMine(context);
    notify($("#mine-notice"), "Reservation canceled; the refund is on its way.", "ok");
  } catch (err) {
    notify($("#mine-notice"), errorText(err), "error");
  }
}

