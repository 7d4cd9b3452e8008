// Reports: revenue and tickets per movie in a region, and per local day in a cinema, as bar charts.
import { barChart, cinemaSelect, cinemas, regions, table } from "./admin-common.js";
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
  const out = h("div", { "aria-live": "polite" });
  const run = async (event) => {
    event.preventDefault();
    const range = new URLSearchParams({ date_from: from.value, date_to: to.value });
    mount(out);
    try {
      const byMovie = await api(`/regions/${encodeURIComponent(region.value)}/reports/movies?${range}`);
      out.append(movieCharts(byMovie, region.value));
      if (cinema.value) {
        out.append(dailyCharts(await api(`/cinemas/${encodeURIComponent(cinema.value)}/reports/daily?${range}`)));
      }
    } catch (err) {
      say(errorText(err), "error");
    }
  };
  panel.append(h("form", { class: "grid-form", onsubmit: run }, field("Region", region),
    field("Cinema (daily figures)", cinema), field("From", from), field("To", to),
    h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Show reports"))), out);
}

function movieCharts(report, region) {
  const rows = report.movies || [];
  if (!rows.length) return h("p", {}, `No sales in ${region} for this period.`);
  return h("div", {},
    barChart(rows.map((m) => ({ label: m.title, value: m.revenue_minor, text: money(m.revenue_minor, m.currency) })),
      `Revenue per movie in ${region}`),
    barChart(rows.map((m) => ({ label: m.title, value: m.tickets_sold, text: `${m.tickets_sold} tickets` })),
      `Tickets per movie in ${region}`),
    table(["Movie", "Shows", "Tickets", "Revenue", "Refunds"], rows.map((m) => [
      m.title, String(m.shows), String(m.tickets_sold), money(m.revenue_minor, m.currency), money(m.refunds_minor, m.currency)])));
}

function dailyCharts(report) {
  const days = report.days || [];
  if (!days.length) return h("p", {}, "No shows for this cinema in this period.");
  return h("div", {},
    barChart(days.map((d) => ({ label: d.day, value: d.tickets_sold, text: `${d.tickets_sold} tickets, ${d.occupancy_pct}%` })),
      `Tickets per day (${report.timezone})`),
    table(["Day", "Shows", "Tickets", "Occupancy", "Revenue", "Refunds"], days.map((d) => [
      d.day, String(d.shows), String(d.tickets_sold), `${d.occupancy_pct}%`, money(d.revenue_minor, d.currency),
      money(d.refunds_minor, d.currency)])));
}
