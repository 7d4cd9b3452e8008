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

/** An SVG element with `attrs` (and `text`, if given). */
function svgNode(tag, attrs, text = null) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** A chart's `<svg>` of class `kind`, its accessible name every item's label and text. */
function chartSvg(kind, width, height, items, title) {
  return svgNode("svg", {
    viewBox: `0 0 ${width} ${height}`, class: kind, role: "img",
    "aria-label": `${title}: ${items.map((i) => `${i.label} ${i.text}`).join("; ")}`,
  });
}

/** A horizontal SVG bar chart of `[{label, value, text}]` (label above each bar), with an accessible summary. */
export function barChart(items, title) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const rowHeight = 40;
  const width = 400;
  const svg = chartSvg("bars", width, items.length * rowHeight + 4, items, title);
  items.forEach((item, index) => {
    const y = index * rowHeight;
    const bar = Math.max(1, Math.round(((width - 130) * item.value) / max));
    const label = item.label.length > 48 ? `${item.label.slice(0, 47)}…` : item.label;
    svg.append(svgNode("text", { x: 0, y: y + 14 }, label),
      svgNode("rect", { x: 0, y: y + 19, height: 16, width: bar }), svgNode("text", { x: bar + 6, y: y + 32 }, item.text));
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, h("strong", {}, title)), svg);
}

/** A vertical SVG column chart of `[{label, value, text}]` (one column per item, e.g. a day). */
export function columnChart(items, title, { max = null } = {}) {
  const top = max ?? Math.max(1, ...items.map((i) => i.value));
  const [width, height, base] = [Math.max(320, items.length * 34), 190, 150];
  const step = width / Math.max(1, items.length);
  const svg = chartSvg("columns", width, height, items, title);
  svg.append(svgNode("line", { x1: 0, x2: width, y1: base + 0.5, y2: base + 0.5, class: "axis" }));
  items.forEach((item, index) => {
    const x = index * step;
    const bar = Math.round(((base - 18) * item.value) / top);
    const column = svgNode("rect", { x: x + step * 0.15, y: base - bar, width: step * 0.7, height: Math.max(bar, 1) });
    column.append(svgNode("title", {}, `${item.label}: ${item.text}`));
    svg.append(column, svgNode("text", { x: x + step / 2, y: base - bar - 4, "text-anchor": "middle", class: "value" }, item.short ?? item.text),
      svgNode("text", { x: x + step / 2, y: base + 16, "text-anchor": "middle" }, item.label));
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, h("strong", {}, title)),
    h("div", { class: "chart-scroll" }, svg));
}

/** A "Download CSV" link for `rows` (arrays of cells) under `headers`. */
export function csvLink(filename, headers, rows) {
  const quote = (cell) => {
    const text = String(cell ?? "");
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const csv = [headers, ...rows].map((row) => row.map(quote).join(",")).join("\r\n") + "\r\n";
  const href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  return h("a", { class: "btn secondary", href, download: filename }, `Download ${filename}`);
}
