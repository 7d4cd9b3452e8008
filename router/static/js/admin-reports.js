// Reports: occupancy and revenue per local day of a cinema, revenue and tickets per movie of a
// region, as charts; movies without sales folded away; every table downloadable as CSV.
import { barChart, cinemaSelect, cinemas, columnChart, csvLink, regions, table } from "./admin-common.js";
import { api } from "./api.js";
import { addDays, errorText, field, h, isoDay, money, mount, select } from "./ui.js";

/** The reports section. */
export async function reportsSection(panel, { say }) {
  const regionList = await regions();
  const all = await cinemas();
  const region = select(regionList.map((r) => ({ value: r.code, label: r.code })));
  const cinema = cinemaSelect(all);
  const from = h("input", { type: "date", value: addDays(isoDay(0), -7) });
  const to = h("input", { type: "date", value: addDays(isoDay(0), 14) });
  const out = h("div", { "aria-live": "polite", class: "reports" });
  const run = async (event) => {
    event.preventDefault();
    const range = new URLSearchParams({ date_from: from.value, date_to: to.value });
    mount(out);
    try {
      if (cinema.value) {
        out.append(dailyCharts(await api(`/cinemas/${encodeURIComponent(cinema.value)}/reports/daily?${range}`), range));
      }
      const byMovie = await api(`/regions/${encodeURIComponent(region.value)}/reports/movies?${range}`);
      out.append(movieCharts(byMovie, region.value, range));
    } catch (err) {
      say(errorText(err), "error");
    }
  };
  panel.append(h("form", { class: "grid-form", onsubmit: run }, field("Region", region),
    field("Cinema (daily figures)", cinema), field("From", from), field("To", to),
    h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Show reports"))), out);
}

const period = (range) => `${range.get("date_from")}_${range.get("date_to")}`;

function movieCharts(report, region, range) {
  const rows = [...(report.movies || [])].sort((a, b) => b.revenue_minor - a.revenue_minor);
  if (!rows.length) return h("p", {}, `No sales in ${region} for this period.`);
  const sold = rows.filter((m) => m.tickets_sold || m.revenue_minor || m.refunds_minor);
  const idle = rows.filter((m) => !sold.includes(m));
  const headers = ["Movie", "Shows", "Tickets", "Revenue", "Refunds", "Currency"];
  const cells = (m) => [m.title, String(m.shows), String(m.tickets_sold), money(m.revenue_minor, m.currency), money(m.refunds_minor, m.currency)];
  const csvRows = rows.map((m) => [m.title, m.shows, m.tickets_sold, (m.revenue_minor / 100).toFixed(2), (m.refunds_minor / 100).toFixed(2), m.currency]);
  return h("section", { class: "report" }, h("h3", {}, sold.length ? `Revenue per movie in ${region}` : `No sales in ${region} for this period`),
    sold.length ? h("div", { class: "chart-grid" },
      barChart(sold.map((m) => ({ label: m.title, value: m.revenue_minor, text: money(m.revenue_minor, m.currency) })), "Revenue"),
      barChart(sold.map((m) => ({ label: m.title, value: m.tickets_sold, text: `${m.tickets_sold} tickets` })), "Tickets")) : null,
    idle.length ? h("details", {}, h("summary", {}, `${idle.length} movie${idle.length > 1 ? "s" : ""} with shows but no sales`),
      h("p", {}, idle.map((m) => `${m.title} (${m.shows} show${m.shows > 1 ? "s" : ""})`).join(", "))) : null,
    h("details", {}, h("summary", {}, "Figures as a table"), table(headers.slice(0, 5), sold.map(cells))),
    h("div", { class: "btn-row" }, csvLink(`movies-${region}-${period(range)}.csv`, headers, csvRows)));
}

function dailyCharts(report, range) {
  const days = report.days || [];
  if (!days.length) return h("p", {}, "No shows for this cinema in this period.");
  const currency = days[0].currency;
  const label = (d) => String(d.day).slice(5).replace("-", "/");
  const headers = ["Day", "Shows", "Capacity", "Tickets", "Occupancy %", "Revenue", "Refunds", "Currency"];
  const csvRows = days.map((d) => [d.day, d.shows, d.capacity, d.tickets_sold, d.occupancy_pct,
    (d.revenue_minor / 100).toFixed(2), (d.refunds_minor / 100).toFixed(2), d.currency]);
  return h("section", { class: "report" }, h("h3", {}, `Per day at this cinema (${report.timezone})`),
    h("div", { class: "chart-grid" },
      columnChart(days.map((d) => ({ label: label(d), value: d.occupancy_pct, text: `${d.occupancy_pct}%`, short: `${Math.round(d.occupancy_pct)}%` })),
        "Occupancy per day", { max: 100 }),
      columnChart(days.map((d) => ({ label: label(d), value: d.revenue_minor, text: money(d.revenue_minor, currency), short: String(Math.round(d.revenue_minor / 100)) })),
        `Revenue per day (${currency})`)),
    h("details", {}, h("summary", {}, "Figures as a table"), table(headers.slice(0, 7), days.map((d) => [
      d.day, String(d.shows), String(d.capacity), String(d.tickets_sold), `${d.occupancy_pct}%`,
      money(d.revenue_minor, d.currency), money(d.refunds_minor, d.currency)]))),
    h("div", { class: "btn-row" }, csvLink(`daily-${report.cinema_id}-${period(range)}.csv`, headers, csvRows)));
}
