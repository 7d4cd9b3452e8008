// Small DOM and formatting helpers shared by the three apps.

/** Build an element: h("button", {class: "x", onclick: fn}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(node.style, value);
    } else if (key in node && typeof value !== "string") {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace every child of `node` with `children`. */
export function mount(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const DIGITS = { JPY: 0, KRW: 0 };

/** Format integer minor units as "12.50 EUR" (money is never a float on the wire). */
export function money(minor, currency) {
  const digits = DIGITS[currency] ?? 2;
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(Math.trunc(minor));
  if (digits === 0) return `${sign}${abs} ${currency}`;
  const major = Math.floor(abs / 100);
  const cents = String(abs % 100).padStart(2, "0");
  return `${sign}${major}.${cents} ${currency}`;
}

/** Parse "12.5" or "12,50" as minor units (an integer), or null when malformed. */
export function toMinor(text) {
  const match = String(text).trim().replace(",", ".").match(/^(\d{1,7})(?:\.(\d{1,2}))?$/);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || "0").padEnd(2, "0"));
}

/** Format an instant in a cinema's IANA timezone. */
export function localTime(iso, timeZone, opts = {}) {
  const date = new Date(iso);
  const options = { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23", ...opts };
  try {
    return new Intl.DateTimeFormat("en-GB", options).format(date);
  } catch {
    return new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" }).format(date);
  }
}

/** "Sat 21 Nov, 20:15" in the cinema's timezone. */
export function localDateTime(iso, timeZone) {
  return localTime(iso, timeZone, { weekday: "short", day: "numeric", month: "short" });
}

/** The local calendar date (YYYY-MM-DD) of an instant in a timezone. */
export function localDate(iso, timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timeZone || "UTC", year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date(iso));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Minutes east of UTC of `timeZone` at instant `date`. */
function zoneOffsetMinutes(date, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return Math.round((asUtc - date.getTime()) / 60000);
}

/** Turn a wall-clock "YYYY-MM-DD" + "HH:MM" in `timeZone` into an ISO instant with offset Z. */
export function zonedToIso(day, time, timeZone) {
  const [y, m, d] = day.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let instant = wall - zoneOffsetMinutes(new Date(wall), timeZone) * 60000;
  instant = wall - zoneOffsetMinutes(new Date(instant), timeZone) * 60000;
  return new Date(instant).toISOString();
}

/** Today's date as YYYY-MM-DD in a timezone, plus `days`. */
export function isoDay(offsetDays = 0, timeZone = undefined) {
  const base = new Date(Date.now() + offsetDays * 86400000);
  return localDate(base.toISOString(), timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone);
}

/** Add days to a YYYY-MM-DD date. */
export function addDays(day, days) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context: fall back). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The items of a listing that may be a bare array or a Page / fan-out envelope. */
export function itemsOf(body) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body.items)) return body.items;
  return [];
}

/** Show a status message in a live region; kind is "info", "ok" or "error". */
export function notify(node, message, kind = "info") {
  node.className = `notice notice-${kind}`;
  node.hidden = !message;
  node.textContent = message || "";
}

/** The human message of an API error (the error body's `detail` plus useful extras). */
export function errorText(err) {
  if (!err) return "";
  if (err.body && typeof err.body === "object") {
    const body = err.body;
    let text = body.detail || body.error || err.message;
    if (Array.isArray(body.errors) && body.errors.length) {
      text += ": " + body.errors.map((e) => `${(e.loc || []).join(".")} ${e.msg}`).join("; ");
    }
    if (Array.isArray(body.seats) && body.seats.length) text += ` (${body.seats.join(", ")})`;
    return text;
  }
  return err.message || String(err);
}

/** A labelled form field: <label>Text <input ...></label> wrapped for layout. */
export function field(labelText, control, hint = null) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const wrap = h("div", { class: "field" }, h("label", { for: id }, labelText), control);
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    wrap.append(h("p", { class: "hint", id: hintId }, hint));
  }
  return wrap;
}

/** A <select> with options [{value, label}], the first selected unless `value` matches. */
export function select(options, value = undefined, attrs = {}) {
  const node = h("select", attrs);
  for (const opt of options) {
    node.append(h("option", { value: opt.value, selected: opt.value === value }, opt.label));
  }
  return node;
}

/** The cinema chosen in `#cinema` (null for none); an empty `#day` becomes its today. */
export function chosenCinema(cinemas) {
  const cinema = cinemas.find((c) => c.id === $("#cinema").value) || null;
  if (cinema && !$("#day").value) $("#day").value = isoDay(0, cinema.timezone);
  return cinema;
}

/** Mark `show`'s button in the `#shows` list as the current one. */
export function markCurrentShow(show) {
  for (const button of document.querySelectorAll("#shows .show-btn")) {
    button.setAttribute("aria-current", String(button.dataset.showId === show.id));
  }
}
