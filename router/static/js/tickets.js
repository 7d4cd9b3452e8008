// Ticket cards with a scannable QR code of the ticket code.
import { qrSvg } from "./qr.js";
import { h, localDateTime, money } from "./ui.js";

/** Ticket cards for `tickets` ([{code, seat_label, seat_type, price_minor}]) of one show. */
export function ticketCards(tickets, { show = null, currency = "" } = {}) {
  return tickets.map((ticket) => h("article", { class: "ticket", "aria-label": `Ticket ${ticket.seat_label}` },
    show ? h("h4", {}, show.movie_title) : null,
    show ? h("div", {}, `${show.cinema_name}, ${show.hall_name}`) : null,
    show ? h("div", {}, localDateTime(show.starts_at, show.timezone)) : null,
    h("div", {}, h("strong", {}, `Seat ${ticket.seat_label}`), ` (${ticket.seat_type})`),
    currency ? h("div", {}, money(ticket.price_minor, currency)) : null,
    qrSvg(ticket.code, 168),
    h("div", { class: "code" }, ticket.code),
    ticket.checked_in_at ? h("div", { class: "badge warn" }, "Checked in") : null));
}
