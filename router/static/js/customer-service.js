// Customer service (admin console and box office): find a customer by email, see their
// reservations in every region (staff: at their cinemas), show or email the tickets, cancel.
import { api } from "./api.js";
import { zonedWhen } from "./my-reservations.js";
import { ticketCards } from "./tickets.js";
import { errorText, field, h, itemsOf, money, mount, notify } from "./ui.js";

/** Fill `panel` with the look-up form and its results. */
export function customerService(panel) {
  const email = h("input", { type: "email", required: true, autocomplete: "off" });
  const notice = h("p", { class: "notice", role: "status", hidden: true });
  const results = h("div", { class: "table-wrap" });
  const tickets = h("div", { class: "print" });
  let cinemas = [];
  let customer = null;

  const search = async (event) => {
    event?.preventDefault();
    mount(tickets);
    notify(notice, "Looking up…", "info");
    try {
      if (!cinemas.length) cinemas = itemsOf(await api("/directory/cinemas"));
      customer = await api(`/users/lookup?${new URLSearchParams({ email: email.value.trim() })}`);
    } catch (err) {
      mount(results);
      notify(notice, err.code === "user_not_found" ? `No customer with the email ${email.value.trim()}.` : errorText(err), "error");
      return;
    }
    await list();
  };

  const list = async (message = null) => {
    let body;
    try {
      body = await api(`/router/customers/${encodeURIComponent(customer.id)}/reservations?limit=200`);
    } catch (err) {
      notify(notice, errorText(err), "error");
      return;
    }
    const items = itemsOf(body);
    const missing = body.unavailable_regions || [];
    const parts = [`${customer.display_name} (${customer.email}): ${items.length} reservation${items.length === 1 ? "" : "s"} you may see.`];
    if (missing.length) parts.push(`Regions not answering: ${missing.join(", ")}; their reservations are missing.`);
    notify(notice, message || parts.join(" "), missing.length ? "warn" : message ? "ok" : "info");
    mount(results, items.length ? table(items) : null);
  };

  const table = (items) => {
    const headers = ["Movie", "Cinema", "When (local)", "Seats", "Total", "Status", "Actions"];
    return h("table", { class: "data stack" },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((r) => {
        const cinema = cinemas.find((c) => c.id === r.cinema_id);
        const cells = [
          r.movie_title, cinema ? `${cinema.name}, ${cinema.city}` : r.cinema_id,
          zonedWhen(r.show_starts_at, cinema?.timezone || "UTC"), r.seats.map((s) => s.label).join(", "),
          money(r.amount_minor, r.currency), r.status, actions(r),
        ];
        return h("tr", {}, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)));
      })));
  };

  const actions = (r) => [
    r.status === "confirmed" ? h("button", { type: "button", class: "btn secondary",
      "aria-label": `Tickets of ${r.id}`, onclick: () => showTickets(r) }, "Tickets") : null,
    r.status === "held" || r.status === "confirmed" ? h("button", { type: "button", class: "btn danger",
      "aria-label": `Cancel reservation ${r.id}`, onclick: () => cancel(r) }, "Cancel") : null,
  ];

  const showTickets = async (r) => {
    try {
      const list = await api(`/reservations/${encodeURIComponent(r.id)}/tickets`);
      const codes = (list.tickets || []).map((t) => `Seat ${t.seat_label}: ${t.code}`).join("\n");
      const subject = `Your tickets: ${r.movie_title}`;
      const mail = `mailto:${encodeURIComponent(customer.email)}?${new URLSearchParams({ subject, body: `${subject}\n\n${codes}\n` }).toString().replace(/\+/g, "%20")}`;
      mount(tickets, h("h3", {}, `Tickets of ${r.movie_title}`),
        h("div", { class: "btn-row no-print" },
          h("a", { class: "btn", href: mail }, `Email the codes to ${customer.email}`),
          h("button", { type: "button", class: "btn secondary", onclick: () => window.print() }, "Print tickets")),
        h("div", { class: "tickets" }, ticketCards(r.id, list.tickets || [], { currency: r.currency })));
      tickets.scrollIntoView({ block: "start" });
    } catch (err) {
      notify(notice, errorText(err), "error");
    }
  };

  const cancel = async (r) => {
    if (!window.confirm(`Cancel reservation ${r.id} (${r.seats.map((s) => s.label).join(", ")})? A paid one is refunded.`)) return;
    try {
      const done = await api(`/reservations/${encodeURIComponent(r.id)}/cancel`, {
        method: "POST", body: { reason: "canceled by customer service" },
      });
      mount(tickets);
      await list(`Canceled ${r.id}${done.refund_minor ? `; refunded ${money(done.refund_minor, done.currency)}` : ""}.`);
    } catch (err) {
      notify(notice, errorText(err), "error");
    }
  };

  panel.append(
    h("p", { class: "muted" }, "Find a customer by email: their reservations in every region (staff see those at their cinemas)."),
    h("form", { class: "grid-form", role: "search", "aria-label": "Customer look-up", onsubmit: search },
      field("Customer email", email),
      h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Find customer"))),
    notice, results, tickets);
}
