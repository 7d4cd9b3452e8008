// The waiting room of an announced on-sale: join the line, watch the place, get the pass.
import { api, currentUser } from "./api.js";
import { $, errorText, h, localDateTime, mount, notify } from "./ui.js";

const POLL_MS = 2000;
const MAX_POLL_MS = 10000;
const LAG_MS = 500; // replicas read the line every 0.5 s: one may lag the router's reading

/** How long to wait before asking again: as the line says (often near the front or when the
 * seats may all go soon, rarely far back or long before the opening), else from the estimate. */
function pollDelay(status) {
  if (status.poll_after_seconds != null) return status.poll_after_seconds * 1000;
  if (status.opens_at && status.position == null) {
    const untilOpening = Date.parse(status.opens_at) - Date.now();
    return Math.min(MAX_POLL_MS, Math.max(POLL_MS, untilOpening / 2));
  }
  const wait = status.estimated_wait_seconds;
  return wait == null ? POLL_MS : Math.min(MAX_POLL_MS, Math.max(POLL_MS, (wait * 1000) / 5));
}

/** The line number in a line ticket (`<number>.<signature>`); null in an older unranked one. */
function lineNumber(ticket) {
  const text = ticket ? ticket.split(".")[0] : "";
  return /^\d+$/.test(text) ? Number(text) : null;
}

// A later arrival's line number is LATER + its rank; an early one's is its draw key, below it.
const LATER = 1e12;
// The draw answers no watch (an early customer has its number): once past the opening, spread
// over these milliseconds, the page reads the drawn line's state to show its estimate.
const OPENING_SPREAD_MS = [500, 5000];

/** How far admission has gone in line numbers (`admitted_through` from an older region). */
function mark(state) {
  return state.admitted_mark ?? state.admitted_through;
}

/** Our position from the line's state: exact for a later arrival, estimated from a draw key. */
function positionOf(number, state) {
  if (!state.drawn) return null;
  if (number >= LATER) return number - LATER - state.admitted_through;
  const rank = Math.round((number / LATER) * (state.early_count || 0)); // keys are uniform
  return Math.max(1, rank - state.admitted_through);
}

/** The line number the watch should answer at: where our wait has halved, else our own. */
function untilOf(number, position, state) {
  if (position == null || position <= 1) return number;
  if (number >= LATER) return number - Math.floor((position - 1) / 2);
  return number - Math.floor(Math.max(0, number - (state ? mark(state) : 0) - 1) / 2);
}

/** The wait for a position from the line's public state, as the region estimates it. */
function estimate(state, position) {
  const rate = Math.max(state.admit_rate, state.max_admit_per_second / 4, 0.1);
  const untilOpening = state.opens_at ? Math.max(0, (Date.parse(state.opens_at) - Date.now()) / 1000) : 0;
  return Math.round((untilOpening + position / rate) * 10) / 10;
}
const passKey = (showId) => `admission:${showId}`;
const ticketKey = (showId) => `line-ticket:${showId}`;

/** The admission pass this tab holds for a show, if its window is still open. */
export function admissionHeaders(showId) {
  const saved = JSON.parse(sessionStorage.getItem(passKey(showId)) || "null");
  if (!saved || Date.parse(saved.expires) <= Date.now()) return {};
  return { "X-Admission-Pass": saved.pass };
}

/**
 * Stand in a show's line until admitted: `onAdmitted()` once the seats may be picked (at once
 * for a show without a waiting room), `onSoldOut()` when the line closes. The place belongs to
 * the signed-in customer, so a reload or another tab finds it again.
 */
export class WaitingRoom {
  constructor(panel, { onAdmitted, onSoldOut, needLogin }) {
    this.panel = panel;
    this.onAdmitted = onAdmitted;
    this.onSoldOut = onSoldOut;
    this.needLogin = needLogin;
    this.timer = null;
    this.first = null;
    this.version = "";
    this.line = null; // the line's public state as the watch last answered it
    this.watching = null; // the held watch's AbortController
    this.opening = null; // the timer of the read of the line's state after the opening
  }

  async enter(show) {
    this.leave();
    this.show = show;
    this.first = null;
    this.version = "";
    this.line = null;
    let figures;
    try {
      figures = await api(`/shows/${encodeURIComponent(show.id)}/onsale`, { auth: false, allow: [404] });
    } catch (err) {
      figures = null;
    }
    if (!figures || !figures.waiting_room) {
      this.panel.hidden = true;
      this.onAdmitted();
      return;
    }
    this.panel.hidden = false;
    if (!currentUser()) {
      this.render({ state: "not_in_line", opens_at: figures.opens_at, line_length: figures.line_length });
      this.needLogin(() => this.enter(show));
      return;
    }
    await this.step("POST");
  }

  leave() {
    clearTimeout(this.timer);
    clearTimeout(this.opening);
    this.timer = null;
    this.opening = null;
    if (this.watching) this.watching.abort();
    this.watching = null;
  }

  /** Ask where we stand; a poll shows the line ticket, so the region answers it from memory. */
  async ask(path, method) {
    const ticket = method === "GET" ? sessionStorage.getItem(ticketKey(this.show.id)) : null;
    const headers = ticket ? { "X-Line-Ticket": ticket } : {};
    try {
      return await api(path, { method, headers });
    } catch (err) {
      if (!ticket || err.code !== "line_ticket_invalid") throw err;
      sessionStorage.removeItem(ticketKey(this.show.id)); // not ours (another account): ask plainly
      return api(path, { method });
    }
  }

  async step(method = "GET") {
    const path = `/shows/${encodeURIComponent(this.show.id)}/line`;
    let status;
    try {
      status = await this.ask(path, method);
      if (status.state === "not_in_line" || status.state === "expired") status = await this.ask(path, "POST");
    } catch (err) {
      notify($("#line-notice", this.panel), `Cannot reach the line: ${errorText(err)}. Retrying…`, "warn");
      this.timer = setTimeout(() => this.step(), POLL_MS * 2);
      return;
    }
    notify($("#line-notice", this.panel), "");
    if (status.line_ticket) sessionStorage.setItem(ticketKey(this.show.id), status.line_ticket);
    this.render(status);
    if (status.state === "admitted" || status.state === "open") {
      if (status.admission_pass) {
        const saved = { pass: status.admission_pass, expires: status.pass_expires_at };
        sessionStorage.setItem(passKey(this.show.id), JSON.stringify(saved));
      }
      this.panel.hidden = status.state === "open";
      this.onAdmitted();
      return;
    }
    if (status.state === "sold_out") {
      this.onSoldOut();
      return;
    }
    this.watch(status);
  }

  /**
   * Hold one request the router answers when the line changes for us (the draw, the
   * sell-out, admission halfway to our number or at it), else after ~20 s; our place comes
   * from the line number in our ticket (an early customer's is its draw key: nothing to ask at
   * the draw). Without the watch (an older router): poll.
   */
  async watch(status) {
    const show = this.show;
    const number = lineNumber(sessionStorage.getItem(ticketKey(show.id)));
    const last = this.line;
    if (last && (number == null ? last.drawn : last.drawn && mark(last) >= number)) {
      // The router read the line from a replica ahead of the one that answered us: ask again.
      this.timer = setTimeout(() => this.step(), LAG_MS);
      return;
    }
    const params = new URLSearchParams({ seen: this.version });
    if (number != null) params.set("until", String(untilOf(number, status.position, last)));
    if (number != null && number < LATER && !(last && last.drawn)) this.atOpening(status);
    const controller = new AbortController();
    this.watching = controller;
    let state;
    try {
      const answer = await fetch(`/shows/${encodeURIComponent(show.id)}/line/watch?${params}`, {
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
      state = answer.ok ? await answer.json() : null;
    } catch (err) {
      if (controller.signal.aborted) return;
      state = null;
    }
    if (this.watching !== controller || this.show !== show) return;
    this.watching = null;
    if (!state || state.version == null) {
      this.timer = setTimeout(() => this.step(), pollDelay(status));
      return;
    }
    const news = state.version !== this.version && this.version !== "";
    this.version = state.version;
    this.line = state;
    if (state.sold_out) {
      this.render({ state: "sold_out" }); // told by the watch: no need to ask the region
      this.onSoldOut();
      return;
    }
    if (!state.waiting_room || (number != null && state.drawn && mark(state) >= number)) {
      this.step(); // our turn (or no waiting room any more): the region gives the pass
      return;
    }
    if (number == null) {
      if (state.drawn || news) {
        // An older unranked ticket: ask for our number (at the draw everyone asks: spread).
        this.timer = setTimeout(() => this.step(), state.drawn ? Math.random() * 1000 : 0);
      } else {
        this.watch(status); // not drawn yet: nothing to ask the region
      }
      return;
    }
    // An early customer's position is estimated from its key (said so): asking for it would
    // put a thousand requests in front of the opening's joins and holds.
    const position = positionOf(number, state);
    const moved = { ...status, position, line_length: state.line_length, approximate: number < LATER };
    if (position != null) moved.estimated_wait_seconds = estimate(state, position);
    this.render(moved);
    this.watch(moved);
  }

  /** Once, a few seconds past the opening, re-read the line's state (the draw is no news). */
  atOpening(status) {
    if (this.opening != null || !status.opens_at) return;
    const [least, most] = OPENING_SPREAD_MS;
    const delay = Math.max(0, Date.parse(status.opens_at) - Date.now()) + least + Math.random() * (most - least);
    this.opening = setTimeout(() => {
      if (!this.watching) return; // asking the region, or done: nothing to refresh
      this.watching.abort();
      this.watching = null;
      this.version = ""; // answered at once with the state as the router last read it
      this.watch(status);
    }, delay);
  }

  render(status) {
    const body = $("#line-body", this.panel);
    if (status.state === "sold_out") {
      mount(body, h("p", { class: "line-big" }, "Sold out. Every seat of this show has been sold."));
      return;
    }
    if (status.state === "admitted") {
      const until = localDateTime(status.pass_expires_at, this.show.timezone);
      mount(body, h("p", { class: "line-big" }, `It's your turn: choose your seats before ${until}.`));
      return;
    }
    const opens = status.opens_at ? localDateTime(status.opens_at, this.show.timezone) : "";
    if (status.position == null) {
      mount(body,
        h("p", { class: "line-big" }, "You are in the waiting room."),
        h("p", {}, `Sales open at ${opens} (local time). Everyone here now gets a random place in line at the opening: arriving earlier gives no advantage.`),
        h("p", { class: "muted" }, `${status.line_length} waiting.`));
      return;
    }
    this.first = Math.max(this.first ?? status.position, status.position);
    const done = this.first > 1 ? (this.first - status.position) / (this.first - 1) : 1;
    const wait = status.estimated_wait_seconds;
    const estimate = wait == null ? "" : wait < 60 ? "less than a minute" : `about ${Math.round(wait / 60)} min`;
    mount(body,
      h("p", { class: "line-big" }, `Your place in line: ${status.approximate ? "about " : ""}${status.position}`),
      h("progress", { max: "100", value: String(Math.round(done * 100)), "aria-label": "Progress in line" }),
      h("p", {}, `Estimated wait: ${estimate}. ${status.line_length} waiting. Keep this page open; a reload keeps your place.`));
  }
}
