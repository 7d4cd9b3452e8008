// Shows: a per-hall week calendar (one column per local day) and a create form.
import { barChart, cinemaSelect, cinemas, movies, regions } from "./admin-common.js";
import { onSaleCard } from "./admin-onsale.js";
import { api } from "./api.js";
import {
  addDays, errorText, field, h, isoDay, itemsOf, localDate, localDateTime, localTime, money, mount, toMinor,
  zonedToIso,
} from "./ui.js";

const DEFAULT_PRICE = { standard: "11.50", premium: "14.50", vip: "19.00", wheelchair: "9.50", companion: "9.50" };

/** The shows section. */
export async function showsSection(panel, { say }) {
  const all = await cinemas();
  const cinema = cinemaSelect(all);
  const hall = h("select", { disabled: true }, h("option", { value: "" }, "Choose a cinema first"));
  const week = h("input", { type: "date", value: isoDay(0) });
  const calendar = h("div", { class: "calendar", role: "region", "aria-label": "Week calendar" });
  const formBox = h("div");
  const detail = h("div", { "aria-live": "polite" });
  const ctx = { all, cinema: null, hall: null, halls: [], shows: [], say, calendar, week, formBox, detail };
  panel.append(h("div", { class: "grid-form" }, field("Cinema", cinema), field("Hall", hall), field("Week starting", week)),
    calendar, detail, formBox);
  cinema.addEventListener("change", async () => {
    ctx.cinema = all.find((c) => c.id === cinema.value) || null;
    if (!ctx.cinema) return;
    ctx.halls = itemsOf(await api(`/cinemas/${encodeURIComponent(ctx.cinema.id)}/halls`));
    mount(hall, h("option", { value: "" }, "Choose a hall"), ctx.halls.map((x) => h("option", { value: x.id }, x.name)));
    hall.disabled = false;
    if (ctx.halls.length === 1) {
      hall.value = ctx.halls[0].id;
      hall.dispatchEvent(new Event("change"));
    }
  });
  hall.addEventListener("change", async () => {
    ctx.hall = ctx.halls.find((x) => x.id === hall.value) || null;
    await drawCalendar(ctx);
    mount(formBox, ctx.hall ? await createForm(ctx) : null);
  });
  week.addEventListener("change", () => drawCalendar(ctx));
}

async function drawCalendar(ctx) {
  if (!ctx.hall) return mount(ctx.calendar);
  const from = ctx.week.value || isoDay(0);
  const query = new URLSearchParams({ date_from: addDays(from, -1), date_to: addDays(from, 7), limit: "200" });
  try {
    const listing = itemsOf(await api(`/cinemas/${encodeURIComponent(ctx.cinema.id)}/shows?${query}`));
    ctx.shows = listing.filter((s) => s.hall_id === ctx.hall.id).sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  } catch (err) {
    ctx.say(errorText(err), "error");
    return;
  }
  const tz = ctx.cinema.timezone;
  const days = Array.from({ length: 7 }, (_, i) => addDays(from, i));
  mount(ctx.calendar, days.map((day) => {
    const shows = ctx.shows.filter((s) => localDate(s.starts_at, tz) === day);
    const heading = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" })
      .format(new Date(`${day}T12:00:00Z`));
    return h("div", { class: "day-col" }, h("h4", {}, heading), shows.length ? shows.map((s) =>
      h("button", {
        type: "button", class: `cal-show${s.status === "canceled" ? " canceled" : ""}`, dataset: { showId: s.id },
        "aria-label": `${s.movie_title} ${localDateTime(s.starts_at, tz)}: details`, onclick: () => showDetail(ctx, s),
      },
        h("strong", {}, `${localTime(s.starts_at, tz)}–${localTime(s.ends_at, tz)}`), h("br"), s.movie_title,
        h("br"), h("small", {}, `${s.free_seats}/${s.seat_count} free${s.status === "canceled" ? " · canceled" : ""}`)))
      : h("p", { class: "muted" }, "No shows"));
  }));
}

/** A show's report (occupancy, revenue by seat type) with a cancel button. */
async function showDetail(ctx, show) {
  const tz = ctx.cinema.timezone;
  let report;
  try {
    report = await api(`/shows/${encodeURIComponent(show.id)}/report`);
  } catch (err) {
    return ctx.say(errorText(err), "error");
  }
  const cancel = h("button", { type: "button", class: "btn danger", onclick: async () => {
    if (!window.confirm(`Cancel ${show.movie_title} at ${localDateTime(show.starts_at, tz)}? Every ticket is refunded.`)) return;
    try {
      const done = await api(`/shows/${encodeURIComponent(show.id)}/cancel`, { method: "POST", body: { reason: "canceled by admin" } });
      ctx.say(`Show canceled; ${done.canceled_reservations} reservations canceled, ${money(done.refunded_minor, report.currency)} refunded.`, "ok");
      mount(ctx.detail);
      await drawCalendar(ctx);
    } catch (err) {
      ctx.say(errorText(err), "error");
    }
  } }, "Cancel this show");
  mount(ctx.detail, h("div", { class: "card" },
    h("h3", {}, `${show.movie_title}, ${localDateTime(show.starts_at, tz)}`),
    h("p", {}, `${report.status} · ${report.sold} sold, ${report.held} held, ${report.free} free of ${report.capacity} · occupancy ${report.occupancy_pct}% · revenue ${money(report.revenue_minor, report.currency)} · refunds ${money(report.refunds_minor, report.currency)}`),
    barChart(report.by_seat_type.map((t) => ({ label: t.seat_type, value: t.revenue_minor, text: `${money(t.revenue_minor, report.currency)} (${t.sold}/${t.capacity})` })), "Revenue by seat type"),
    report.status === "scheduled" ? h("div", { class: "btn-row" }, cancel) : null,
    report.status === "scheduled" ? await onSaleCard(show, tz, ctx.say) : null));
}

async function createForm(ctx) {
  const list = await movies(ctx.cinema.region);
  const currency = (await regions()).find((r) => r.code === ctx.cinema.region)?.currency || "major units";
  const movie = h("select", { required: true }, list.map((m) => h("option", { value: m.id }, `${m.title} (${m.duration_minutes} min)`)));
  const day = h("input", { type: "date", required: true, value: ctx.week.value || isoDay(0) });
  const time = h("input", { type: "time", required: true, value: "20:00" });
  const prices = Object.fromEntries(ctx.hall.seat_types.map((t) => [t, h("input", { inputmode: "decimal", required: true, value: DEFAULT_PRICE[t] || "10.00" })]));
  const result = h("div", { role: "alert" });
  const form = h("form", { onsubmit: async (event) => {
    event.preventDefault();
    mount(result);
    const body = { movie_id: movie.value, starts_at: zonedToIso(day.value, time.value, ctx.cinema.timezone), prices: {} };
    for (const [type, input] of Object.entries(prices)) {
      const minor = toMinor(input.value);
      if (minor === null) return mount(result, h("p", { class: "notice notice-error" }, `Price of ${type} must look like 12.50`));
      body.prices[type] = minor;
    }
    try {
      const show = await api(`/halls/${encodeURIComponent(ctx.hall.id)}/shows`, { method: "POST", body });
      mount(result, h("p", { class: "notice notice-ok" }, `Show created: ${show.movie_title}, ${localDateTime(show.starts_at, show.timezone)} (${show.id}).`));
      await drawCalendar(ctx);
    } catch (err) {
      mount(result, h("p", { class: "notice notice-error" }, overlapText(err, ctx)));
    }
  } }, h("h3", {}, `Schedule a show in ${ctx.hall.name}`),
  h("div", { class: "grid-form" }, field("Movie", movie), field("Date (cinema's local time)", day), field("Start time", time),
    Object.entries(prices).map(([type, input]) => field(`Price ${type} (${currency})`, input))),
  result, h("div", { class: "btn-row" }, h("button", { type: "submit", class: "btn" }, "Create show")));
  return form;
}

function overlapText(err, ctx) {
  if (err.code !== "show_overlap") return errorText(err);
  const tz = ctx.cinema.timezone;
  const other = ctx.shows.find((s) => s.id === err.body.conflicting_show_id);
  const start = err.body.conflicting_starts_at;
  const end = err.body.conflicting_ends_at;
  const what = other ? `${other.movie_title} ` : "";
  const when = start ? `${localDateTime(start, tz)}–${localTime(end, tz)}` : "";
  return `${err.body.detail}. It clashes with ${what}${when} (show ${err.body.conflicting_show_id || "unknown"}).`;
}

