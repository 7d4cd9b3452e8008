// Data loaders and small widgets shared by the admin console's sections.
import { api } from "./api.js";
import { h, itemsOf } from "./ui.js";

let cinemaCache = null;

/** Every cinema of the directory (cached for the page's life; `fresh` reloads). */
export async function cinemas(fresh = false) {
  if (!cinemaCache || fresh) cinemaCache = itemsOf(await api("/directory/cinemas"));
  return cinemaCache;
}

/** Every region of the directory. */
export async function regions() {
  return itemsOf(await api("/directory/regions"));
}

/** The movies of a region's catalog. */
export async function movies(region) {
  return itemsOf(await api(`/regions/${encodeURIComponent(region)}/movies?limit=200`));
}

/** A <select> of cinemas labelled "City: Name". */
export function cinemaSelect(list, attrs = {}) {
  return h("select", attrs, h("option", { value: "" }, "Choose a cinema"),
    list.map((c) => h("option", { value: c.id }, `${c.city}: ${c.name} (${c.region})`)));
}

/** A table from column headers and rows of cells. */
export function table(headers, rows, caption = null) {
  return h("div", { class: "table-wrap" }, h("table", { class: "data stack" },
    caption ? h("caption", { class: "muted" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {},
      cells.map((c, i) => h("td", { "data-label": headers[i] || "" }, c)))))));
}

/** A horizontal SVG bar chart of `[{label, value, text}]` with an accessible summary. */
export function barChart(items, title) {
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1, ...items.map((i) => i.value));
  const rowHeight = 26;
  const labelWidth = 210;
  const width = 640;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${items.length * rowHeight + 8}`);
  svg.setAttribute("class", "bars");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${items.map((i) => `${i.label} ${i.text}`).join("; ")}`);
  svg.style.width = "100%";
  svg.style.maxWidth = `${width}px`;
  items.forEach((item, index) => {
    const y = index * rowHeight + 4;
    const bar = Math.round(((width - labelWidth - 110) * item.value) / max);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(y + 16));
    label.textContent = item.label.length > 30 ? `${item.label.slice(0, 29)}…` : item.label;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(labelWidth));
    rect.setAttribute("y", String(y + 3));
    rect.setAttribute("height", "18");
    rect.setAttribute("width", String(Math.max(1, bar)));
    const value = document.createElementNS(ns, "text");
    value.setAttribute("x", String(labelWidth + bar + 6));
    value.setAttribute("y", String(y + 16));
    value.textContent = item.text;
    svg.append(label, rect, value);
  });
  return h("figure", {}, h("figcaption", {}, h("strong", {}, title)), svg);
}
