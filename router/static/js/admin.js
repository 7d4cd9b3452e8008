// The admin console: regions, cinemas, halls, movies, shows, users and reports.
import { hallsSection } from "./admin-halls.js";
import { reportsSection } from "./admin-reports.js";
import { showsSection } from "./admin-shows.js";
import { cinemas, movies, regions, table } from "./admin-common.js";
import { customerService } from "./customer-service.js";
import { api, currentUser } from "./api.js";
import { sessionControls } from "./session.js";
import { $, errorText, field, h, mount, notify, select } from "./ui.js";

const SECTIONS = {
  regions: ["Regions", regionsSection],
  cinemas: ["Cinemas", cinemasSection],
  halls: ["Halls", hallsSection],
  movies: ["Movies", moviesSection],
  shows: ["Shows", showsSection],
  users: ["Users", usersSection],
  customers: ["Customer service", async (panel) => customerService(panel)],
  reports: ["Reports", reportsSection],
};
let timer = null;
const say = (message, kind = "info") => notify($("#notice"), message, kind);
const session = sessionControls($("#session"), { onChange: () => open(current) });
let current = location.hash.slice(1) in SECTIONS ? location.hash.slice(1) : "regions";

/** Show one section; every section needs an admin token. */
async function open(name) {
  current = name;
  clearInterval(timer);
  for (const button of $("#tabs").children) {
    button.toggleAttribute("aria-current", button.dataset.section === name);
    if (button.dataset.section === name) button.setAttribute("aria-current", "page");
  }
  history.replaceState(null, "", `#${name}`);
  say("");
  const view = $("#view");
  const user = currentUser();
  if (!user || user.role !== "admin") {
    mount(view, h("section", { class: "panel" }, h("h2", {}, "Admins only"),
      h("p", {}, user ? "This console is for chain admins." : "Log in with an admin account."),
      user ? null : h("button", { type: "button", class: "btn", onclick: () => session.openLogin() }, "Log in")));
    return;
  }
  const [title, render] = SECTIONS[name];
  const panel = h("section", { class: "panel", "aria-labelledby": "section-title" }, h("h2", { id: "section-title" }, title));
  mount(view, panel);
  try {
    await render(panel, { say, every: (ms, fn) => (timer = setInterval(fn, ms)) });
  } catch (err) {
    say(errorText(err), "error");
  }
}

async function regionsSection(panel, { every }) {
  const body = h("div", { "aria-live": "polite" });
  panel.append(h("p", { class: "muted" }, "Health of every regional endpoint as the router sees it (refreshed every 3 s)."), body);
  const draw = async () => {
    const data = await api("/router/regions");
    const badge = (state) => h("span", { class: `badge ${state === "up" || state === "healthy" ? "ok" : state === "degraded" ? "warn" : "bad"}` }, state);
    mount(body,
      h("p", {}, `Directory map ${data.map_version || "none"} (from ${data.map_source}).`),
      table(["Region", "State", "Healthy endpoints", "Endpoints"], data.regions.map((r) => [
        `${r.code} (${r.name})`, badge(r.state), `${r.healthy_endpoints} of ${r.endpoints.length}`,
        h("ul", {}, r.endpoints.map((e) => h("li", {}, `${e.url || "endpoint"} `, badge(e.state),
          e.consecutive_failures ? ` ${e.consecutive_failures} failures` : "", ` · ${e.in_flight} in flight`))),
      ])));
  };
  await draw();
  every(3000, () => draw().catch(() => {}));
}

async function cinemasSection(panel, { say }) {
  const list = h("div");
  const draw = async (fresh) => {
    mount(list, table(["Name", "City", "Address", "Timezone", "Region", "Id"],
      (await cinemas(fresh)).map((c) => [c.name, c.city, c.address, c.timezone, c.region, h("code", {}, c.id)])));
  };
  const regionList = await regions();
  const inputs = {
    name: h("input", { required: true }), city: h("input", { required: true }), address: h("input"),
    timezone: h("input", { required: true, placeholder: "Europe/Paris" }),
    region: select(regionList.map((r) => ({ value: r.code, label: `${r.code} (${r.name})` }))),
  };
  const form = h("form", { class: "grid-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value.trim()]));
    try {
      const made = await api("/directory/cinemas", { method: "POST", body });
      say(`Cinema ${made.name} created (${made.id}).`, "ok");
      form.reset();
      await draw(true);
    } catch (err) {
      say(errorText(err), "error");
    }
  } }, field("Name", inputs.name), field("City", inputs.city), field("Address", inputs.address),
  field("Timezone (IANA)", inputs.timezone), field("Region", inputs.region),
  h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Add cinema")));
  panel.append(list, h("h3", {}, "Add a cinema"), form);
  await draw(false);
}

async function moviesSection(panel, { say }) {
  const regionList = await regions();
  const region = select(regionList.map((r) => ({ value: r.code, label: r.code })));
  const list = h("div");
  const draw = async () => {
    mount(list, table(["Title", "Minutes", "Genres", "Rating", "Id"], (await movies(region.value)).map((m) => [
      m.title, String(m.duration_minutes), m.genres.join(", "), m.age_rating, h("code", {}, m.id)])));
  };
  region.addEventListener("change", draw);
  const inputs = {
    title: h("input", { required: true }), duration_minutes: h("input", { type: "number", min: 1, max: 1000, required: true }),
    genres: h("input", { placeholder: "drama, comedy" }), age_rating: h("input"), description: h("input"),
  };
  const form = h("form", { class: "grid-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = {
      title: inputs.title.value.trim(), duration_minutes: Number(inputs.duration_minutes.value),
      genres: inputs.genres.value.split(",").map((g) => g.trim()).filter(Boolean),
      age_rating: inputs.age_rating.value.trim(), description: inputs.description.value.trim(),
    };
    try {
      const made = await api(`/regions/${encodeURIComponent(region.value)}/movies`, { method: "POST", body });
      say(`Movie ${made.title} added to ${region.value}.`, "ok");
      form.reset();
      await draw();
    } catch (err) {
      say(errorText(err), "error");
    }
  } }, field("Title", inputs.title), field("Duration (minutes)", inputs.duration_minutes),
  field("Genres (comma separated)", inputs.genres), field("Age rating", inputs.age_rating),
  field("Description", inputs.description),
  h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Add movie")));
  panel.append(h("div", { class: "grid-form" }, field("Region", region)), list, h("h3", {}, "Add a movie"), form);
  await draw();
}

async function usersSection(panel, { say }) {
  const cinemaList = await cinemas();
  const q = h("input", { type: "search" });
  const role = select([{ value: "", label: "Any" }, { value: "customer", label: "Customer" },
    { value: "staff", label: "Staff" }, { value: "admin", label: "Admin" }]);
  const list = h("div");
  const draw = async () => {
    const query = new URLSearchParams({ limit: "100" });
    if (q.value.trim()) query.set("q", q.value.trim());
    if (role.value) query.set("role", role.value);
    const page = await api(`/users?${query}`);
    mount(list, table(["Email", "Name", "Role", "Disabled", "Cinemas (staff)", ""], page.items.map(userRow)),
      h("p", { class: "muted" }, `${page.total} users match.`));
  };
  const userRow = (user) => {
    const roleSelect = select(["customer", "staff", "admin"].map((r) => ({ value: r, label: r })), user.role,
      { "aria-label": `Role of ${user.email}` });
    const disabled = h("input", { type: "checkbox", checked: user.disabled, "aria-label": `${user.email} disabled` });
    // Every cinema visible at once (a multi-select box clipped its rows); only staff have any.
    const assigned = h("fieldset", { class: "checklist", "aria-label": `Cinemas of ${user.email}` },
      cinemaList.map((c) => h("label", {}, h("input", {
        type: "checkbox", value: c.id, checked: (user.cinemas || []).includes(c.id),
      }), `${c.city}: ${c.name}`)));
    const syncAssigned = () => {
      assigned.disabled = roleSelect.value !== "staff";
      if (assigned.disabled) for (const box of assigned.querySelectorAll("input")) box.checked = false;
    };
    roleSelect.addEventListener("change", syncAssigned);
    syncAssigned();
    const save = h("button", { type: "button", class: "btn secondary", "aria-label": `Save ${user.email}`, onclick: async () => {
      try {
        await api(`/users/${encodeURIComponent(user.id)}`, { method: "PATCH", body: { role: roleSelect.value, disabled: disabled.checked } });
        if (roleSelect.value === "staff") {
          const ids = [...assigned.querySelectorAll("input:checked")].map((box) => box.value);
          await api(`/users/${encodeURIComponent(user.id)}/cinemas`, { method: "PUT", body: { cinema_ids: ids } });
        }
        const dropped = user.role === "staff" && roleSelect.value !== "staff" && (user.cinemas || []).length;
        say(`Saved ${user.email}.${dropped ? " No longer staff: their cinema assignments were removed." : ""}`, "ok");
        user.role = roleSelect.value;
      } catch (err) {
        say(errorText(err), "error");
      }
    } }, "Save");
    return [user.email, user.display_name, roleSelect, disabled, assigned, save];
  };
  panel.append(h("form", { class: "grid-form", onsubmit: (event) => { event.preventDefault(); draw().catch((e) => say(errorText(e), "error")); } },
    field("Search email or name", q), field("Role", role),
    h("div", { class: "field" }, h("button", { type: "submit", class: "btn" }, "Search"))), list);
  await draw();
}

mount($("#tabs"), Object.entries(SECTIONS).map(([key, [label]]) => h("button", {
  type: "button", class: "btn", dataset: { section: key }, onclick: () => open(key),
}, label)));
open(current);
