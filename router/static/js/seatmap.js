// The seat map: a grid of seat buttons with aisles as gaps, keyboard navigation and a legend.
import { h, money, mount } from "./ui.js";
import { Zoom } from "./zoom.js";

export const SEAT_TYPES = ["standard", "premium", "vip", "wheelchair", "companion"];
const TYPE_MARK = { wheelchair: "\u267F", companion: "+" };
const STATUS_TEXT = { free: "free", held: "held by someone", sold: "sold", blocked: "not for sale" };

function capital(text) {
  return text === "vip" ? "VIP" : text.charAt(0).toUpperCase() + text.slice(1);
}

/** The accessible name of a seat, e.g. "Row C seat 7, premium, 12.50 EUR, free". */
export function seatLabel(seat, currency, selected = false, stateText = null) {
  const price = seat.price_minor === undefined ? null : money(seat.price_minor, currency);
  const state = stateText || (selected ? "selected" : STATUS_TEXT[seat.status] || seat.status);
  return [`Row ${seat.row_label} seat ${seat.number}`, seat.seat_type, price, state]
    .filter(Boolean)
    .join(", ");
}

/**
 * Draws `{grid_rows, grid_cols, currency, seats: [{seat_id, row_label, number, grid_row,
 * grid_col, seat_type, price_minor?, status}]}` and keeps a selection.
 */
export class SeatMap {
  constructor(root, { onToggle = null, selectable = true, label = "Seat map" } = {}) {
    this.root = root;
    this.onToggle = onToggle;
    this.selectable = selectable;
    this.selected = new Set();
    this.mine = new Set();
    this.buttons = new Map();
    this.seats = new Map();
    this.signature = "";
    this.currency = "";
    this.grid = h("div", { class: "seat-grid", role: "group", "aria-label": label });
    this.grid.addEventListener("keydown", (event) => this.onKey(event));
    this.viewport = h("div", { class: "seat-viewport" },
      h("div", { class: "screen", "aria-hidden": "true" }, "Screen"), this.grid);
    this.zoom = new Zoom(this.viewport, (px) => root.style.setProperty("--seat", `${px}px`));
    mount(root, this.zoom.controls(label), this.viewport);
    root.classList.add("seatmap");
  }

  /** Draw or refresh the map; a new hall shape rebuilds, a refresh only updates states. */
  update(map) {
    this.currency = map.currency || "";
    const signature = `${map.grid_rows}x${map.grid_cols}:${map.seats.map((s) => s.seat_id).join(",")}`;
    if (signature !== this.signature) this.build(map, signature);
    const lost = [];
    for (const seat of map.seats) {
      this.seats.set(seat.seat_id, seat);
      if (this.selected.has(seat.seat_id) && seat.status !== "free" && !this.mine.has(seat.seat_id)) {
        lost.push(seat);
      }
    }
    for (const seat of lost) this.selected.delete(seat.seat_id);
    for (const seat of map.seats) this.paint(seat);
    return lost;
  }

  build(map, signature) {
    this.signature = signature;
    this.buttons.clear();
    this.seats.clear();
    // The whole hall fits the width at first (phones); zooming in makes seats big enough to tap.
    this.zoom.fit(map.grid_cols + 2);
    this.grid.style.gridTemplateColumns = `repeat(${map.grid_cols + 2}, var(--seat))`;
    this.grid.style.gridTemplateRows = `repeat(${map.grid_rows}, var(--seat))`;
    const rows = new Map();
    const fragment = document.createDocumentFragment();
    for (const seat of map.seats) {
      rows.set(seat.grid_row, seat.row_label);
      const button = h("button", {
        type: "button",
        class: "seat",
        tabindex: "-1",
        dataset: { seatId: seat.seat_id, row: seat.row_label, number: seat.number },
        style: { gridRow: String(seat.grid_row + 1), gridColumn: String(seat.grid_col + 2) },
        onclick: () => this.toggle(seat.seat_id),
      }, h("span", { "aria-hidden": "true" }, TYPE_MARK[seat.seat_type] || String(seat.number)));
      this.buttons.set(seat.seat_id, button);
      fragment.append(button);
    }
    for (const [gridRow, label] of rows) {
      for (const col of [1, map.grid_cols + 2]) {
        fragment.append(h("span", {
          class: "row-label", "aria-hidden": "true",
          style: { gridRow: String(gridRow + 1), gridColumn: String(col) },
        }, label));
      }
    }
    this.grid.replaceChildren(fragment);
    const first = this.buttons.values().next().value;
    if (first) first.tabIndex = 0;
  }

  paint(seat) {
    const button = this.buttons.get(seat.seat_id);
    if (!button) return;
    const selected = this.selected.has(seat.seat_id);
    const mine = this.mine.has(seat.seat_id) && seat.status !== "free";
    const shown = selected || mine ? "selected" : seat.status;
    button.className = `seat type-${seat.seat_type} state-${shown}`;
    const label = seatLabel(seat, this.currency, selected, mine ? `yours, ${seat.status}` : null);
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-pressed", String(selected));
    const unavailable = !this.selectable || seat.status !== "free";
    button.setAttribute("aria-disabled", String(unavailable && !selected));
    button.title = label;
  }

  /** Select or unselect a free seat (taken ones cannot be picked). */
  toggle(seatId) {
    const seat = this.seats.get(seatId);
    if (!seat || !this.selectable) return;
    if (this.selected.has(seatId)) this.selected.delete(seatId);
    else if (seat.status === "free") this.selected.add(seatId);
    else return;
    this.paint(seat);
    if (this.onToggle) this.onToggle(this.selectedSeats());
  }

  /** Mark the seats the user holds or bought, drawn as theirs whatever their status. */
  setMine(ids) {
    this.mine = new Set(ids);
    for (const seat of this.seats.values()) this.paint(seat);
  }

  /** Replace the selection (e.g. with the seats of a best-available hold). */
  setSelected(ids) {
    this.selected = new Set(ids);
    for (const seat of this.seats.values()) this.paint(seat);
    if (this.onToggle) this.onToggle(this.selectedSeats());
  }

  /** The selected seats with their details. */
  selectedSeats() {
    return [...this.selected].map((id) => this.seats.get(id)).filter(Boolean);
  }

  onKey(event) {
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    const move = moves[event.key];
    const current = event.target.closest(".seat");
    if (!move || !current) return;
    event.preventDefault();
    const from = this.seats.get(Number(current.dataset.seatId));
    const next = this.neighbour(from, move);
    if (!next) return;
    current.tabIndex = -1;
    const button = this.buttons.get(next.seat_id);
    button.tabIndex = 0;
    button.focus();
  }

  neighbour(from, [dRow, dCol]) {
    let best = null;
    let bestScore = Infinity;
    for (const seat of this.seats.values()) {
      const rowGap = (seat.grid_row - from.grid_row) * (dRow || 0);
      const colGap = (seat.grid_col - from.grid_col) * (dCol || 0);
      const ahead = dRow ? rowGap > 0 : colGap > 0;
      if (!ahead || (dCol && seat.grid_row !== from.grid_row)) continue;
      const score = dRow
        ? rowGap * 1000 + Math.abs(seat.grid_col - from.grid_col)
        : colGap;
      if (score < bestScore) [best, bestScore] = [seat, score];
    }
    return best;
  }
}

/** The legend: a swatch per seat type present (with its price) and per seat state. */
export function legend(seats, currency, { prices = null } = {}) {
  const types = new Map();
  for (const seat of seats) {
    if (!types.has(seat.seat_type)) types.set(seat.seat_type, seat.price_minor);
  }
  const items = [];
  for (const type of SEAT_TYPES.filter((t) => types.has(t))) {
    const price = prices?.[type] ?? types.get(type);
    items.push(h("li", {},
      h("span", { class: `swatch seat type-${type} state-free`, "aria-hidden": "true" },
        TYPE_MARK[type] || ""),
      `${capital(type)}${price === undefined || price === null ? "" : ` ${money(price, currency)}`}`));
  }
  for (const [state, text] of [["selected", "Your seats"], ["held", "Held"], ["sold", "Sold"],
    ["blocked", "Not for sale"]]) {
    items.push(h("li", {},
      h("span", { class: `swatch seat type-standard state-${state}`, "aria-hidden": "true" }),
      text));
  }
  return h("ul", { class: "legend", "aria-label": "Legend" }, items);
}
