// Ticket cards with a scannable QR code of the ticket code, rendered by the regional API (segno).
import { api } from "./api.js";
import { h, localDateTime, money } from "./ui.js";

const QR_PX = 168;

/** The QR code of a ticket as an image, filled in once its region has rendered it. */
function qrImage(reservationId, code) {
  const img = h("img", { class: "qr", width: QR_PX, height: QR_PX, alt: `QR code of ticket ${code}` });
  const path = `/reservations/${encodeURIComponent(reservationId)}/tickets/${encodeURIComponent(code)}/qr.svg`;
  api(path, { text: true, headers: { Accept: "image/svg+xml" } })
    .then((svg) => { img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`; })
    .catch(() => { img.alt = `QR code unavailable: show the code ${code}`; });
  return img;
}

/** Ticket cards for `tickets` ([{code, seat_label, seat_type, price_minor}]) of one reservation. */
export function ticketCards(reservationId, tickets, { show = null, currency = "" } = {}) {
  return tickets.map((ticket) => h("article", { class: "ticket", "aria-label": `Ticket ${ticket.seat_label}` },
    show ? h("h4", {}, show.movie_title) : null,
    show ? h("div", {}, `${show.cinema_name}, ${show.hall_name}`) : null,
    show ? h("div", {}, localDateTime(show.starts_at, show.timezone)) : null,
    h("div", {}, h("strong", {}, `Seat ${ticket.seat_label}`), ` (${ticket.seat_type})`),
    currency ? h("div", {}, money(ticket.price_minor, currency)) : null,
    qrImage(reservationId, ticket.code),
    h("div", { class: "code" }, ticket.code),
    ticket.checked_in_at ? h("div", { class: "badge warn" }, "Checked in") : null));
}
