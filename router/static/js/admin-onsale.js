// The on-sale of a show: announce its opening and waiting room, and watch its line live.
import { api } from "./api.js";
import { errorText, field, h, localDateTime, mount, zonedToIso } from "./ui.js";

const POLL_MS = 2000;

/** A card that sets a show's on-sale and, while it is on screen, shows its line every 2 s. */
export async function onSaleCard(show, timeZone, say) {
  const path = `/shows/${encodeURIComponent(show.id)}/onsale`;
  const live = h("div", { "aria-live": "polite", class: "onsale-live" });
  const day = h("input", { type: "date", required: true });
  const time = h("input", { type: "time", required: true });
  const room = h("input", { type: "checkbox", checked: true });
  const windowMinutes = h("input", { type: "number", min: "1", max: "120", value: "10" });
  const ceiling = h("input", { type: "number", min: "1", max: "10000", value: "20" });
  const form = h("form", { class: "grid-form", "aria-label": "On-sale" },
    field("Opens (local day)", day), field("Opens (local time)", time),
    field("Waiting room", room), field("Purchase window (min)", windowMinutes),
    field("Admissions per second, at most", ceiling),
    h("div", { class: "field" }, h("button", { type: "submit", class: "btn secondary" }, "Set on-sale")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      opens_at: zonedToIso(day.value, time.value, timeZone), waiting_room: room.checked,
      window_minutes: Number(windowMinutes.value), max_admit_per_second: Number(ceiling.value),
    };
    try {
      draw(await api(path, { method: "PUT", body }));
      say("On-sale set.", "ok");
    } catch (err) {
      say(errorText(err), "error");
    }
  });
  const card = h("div", { class: "card" }, h("h4", {}, "On-sale and waiting room"), live, form);

  function draw(figures) {
    if (!figures || !figures.show_id) return mount(live, h("p", { class: "muted" }, "No on-sale announced."));
    const rows = [
      ["Opens", localDateTime(figures.opens_at, timeZone)],
      ["Waiting room", figures.waiting_room ? "on" : "off"],
      ["In line", String(figures.line_length)], ["Admitted", String(figures.admitted)],
      ["Admitting per second", String(figures.admit_rate)], ["Seats sold", String(figures.sold)],
      ["Seats free", String(figures.free)], ["Sold out", figures.sold_out ? "yes" : "no"],
    ];
    mount(live, h("dl", { class: "figures" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  }

  async function poll() {
    if (!card.isConnected) return;
    try {
      draw(await api(path, { allow: [404] }));
    } catch (err) {
      mount(live, h("p", { class: "muted" }, `Line figures unavailable: ${errorText(err)}`));
    }
    setTimeout(poll, POLL_MS);
  }
  draw(await api(path, { allow: [404] }).catch(() => null));
  setTimeout(poll, POLL_MS);
  return card;
}
