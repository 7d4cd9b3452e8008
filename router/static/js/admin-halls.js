// Halls: pick a cinema, edit a hall's layout (rows + legend) with a live seat-map preview.
import { cinemaSelect, cinemas, table } from "./admin-common.js";
import { api } from "./api.js";
import { SeatMap, legend } from "./seatmap.js";
import { errorText, field, h, mount } from "./ui.js";

const ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ";
const DEFAULT_LEGEND = "A=standard\nP=premium\nV=vip\nW=wheelchair\nC=companion\nX=standard-blocked";
const SAMPLE_ROWS = ["WCAA_AAAAAA_AACW", "AAAA_AAAAAA_AAAA", "AAAA_VVVVVV_AAAA", "PPPP_PPPPPP_PPPP"];

/** Parse legend lines "A=standard" into an object. */
export function parseLegend(text) {
  const legendMap = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const [key, ...rest] = line.split("=");
    if (key.length !== 1 || !rest.length) throw new Error(`legend line "${line}" must look like A=standard`);
    legendMap[key] = rest.join("=").trim();
  }
  return legendMap;
}

/** Turn a layout document into the seat-map shape (mirrors regional_api/halls/layout.py). */
export function previewMap(rows, legendMap) {
  const seats = [];
  let labelIndex = 0;
  rows.forEach((row, gridRow) => {
    let number = 0;
    const hasSeats = [...row].some((c) => c !== "_" && c !== " ");
    const label = hasSeats ? autoLabel(labelIndex++) : "";
    [...row].forEach((char, gridCol) => {
      if (char === "_" || char === " ") return;
      const meaning = legendMap[char];
      if (!meaning) throw new Error(`row ${gridRow + 1}, column ${gridCol + 1}: "${char}" is not in the legend`);
      const blocked = meaning.endsWith("-blocked");
      number += 1;
      seats.push({
        seat_id: seats.length + 1, row_label: label, number, grid_row: gridRow, grid_col: gridCol,
        seat_type: meaning.replace(/-blocked$/, ""), status: blocked ? "blocked" : "free",
      });
    });
  });
  const cols = Math.max(0, ...rows.map((r) => r.length));
  return { grid_rows: rows.length, grid_cols: cols, currency: "", seats };
}

function autoLabel(index) {
  const base = ROW_LETTERS.length;
  return index < base ? ROW_LETTERS[index] : ROW_LETTERS[Math.floor(index / base) - 1] + ROW_LETTERS[index % base];
}

/** The halls section. */
export async function hallsSection(panel, { say }) {
  const all = await cinemas();
  const cinema = cinemaSelect(all);
  const list = h("div");
  const editor = h("div");
  panel.append(h("div", { class: "grid-form" }, field("Cinema", cinema)), list, editor);
  cinema.addEventListener("change", async () => {
    mount(editor);
    if (!cinema.value) return mount(list);
    try {
      const halls = await api(`/cinemas/${encodeURIComponent(cinema.value)}/halls`);
      const items = Array.isArray(halls) ? halls : halls.items || [];
      mount(list, table(["Hall", "Seats", "Seat types", ""], items.map((hall) => [
        hall.name, String(hall.seat_count), hall.seat_types.join(", "),
        h("button", { type: "button", class: "btn secondary", onclick: () => edit(hall.id) }, `Edit ${hall.name}`),
      ])), h("button", { type: "button", class: "btn", onclick: () => edit(null) }, "New hall"));
    } catch (err) {
      say(errorText(err), "error");
    }
  });
  const edit = async (hallId) => {
    const hall = hallId ? await api(`/halls/${encodeURIComponent(hallId)}`) : null;
    mount(editor, hallEditor(cinema.value, hall, say, () => cinema.dispatchEvent(new Event("change"))));
  };
}

function hallEditor(cinemaId, hall, say, saved) {
  const name = h("input", { required: true, value: hall ? hall.name : "" });
  const rows = h("textarea", { rows: 10, spellcheck: false }, (hall ? hall.layout.rows : SAMPLE_ROWS).join("\n"));
  const legendText = h("textarea", { rows: 6, spellcheck: false },
    hall ? Object.entries(hall.layout.legend).map(([k, v]) => `${k}=${v}`).join("\n") : DEFAULT_LEGEND);
  const problem = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  const previewBox = h("div");
  const legendBox = h("div");
  const seatMap = new SeatMap(previewBox, { selectable: false, label: "Layout preview" });
  const draw = () => {
    try {
      const map = previewMap(rows.value.split("\n").filter((r, i, all) => r.length || i < all.length - 1), parseLegend(legendText.value));
      seatMap.signature = "";
      seatMap.update(map);
      mount(legendBox, legend(map.seats, ""), h("p", { class: "muted" }, `${map.seats.length} seats, ${map.grid_rows} rows × ${map.grid_cols} columns.`));
      problem.hidden = true;
    } catch (err) {
      problem.hidden = false;
      problem.textContent = err.message;
    }
  };
  rows.addEventListener("input", draw);
  legendText.addEventListener("input", draw);
  const form = h("form", { onsubmit: async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), rows: rows.value.split("\n").filter((r) => r.length), legend: parseLegend(legendText.value) };
    try {
      const result = hall
        ? await api(`/halls/${encodeURIComponent(hall.id)}`, { method: "PUT", body })
        : await api(`/cinemas/${encodeURIComponent(cinemaId)}/halls`, { method: "POST", body });
      say(`Hall ${result.name} saved: ${result.seat_count} seats.`, "ok");
      saved();
    } catch (err) {
      say(errorText(err), "error");
    }
  } },
  h("h3", {}, hall ? `Edit ${hall.name}` : "New hall"),
  field("Hall name", name),
  h("div", { class: "grid-form" },
    field("Rows (front first; _ is an aisle)", rows, "One line per row, one character per seat."),
    field("Legend (char=type)", legendText, "Types: standard, premium, vip, wheelchair, companion; add -blocked to block.")),
  problem, legendBox, previewBox,
  h("div", { class: "btn-row" }, h("button", { type: "submit", class: "btn" }, hall ? "Replace layout" : "Create hall")));
  queueMicrotask(draw);
  return form;
}
