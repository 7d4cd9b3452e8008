// Login / register dialog and the signed-in indicator shared by the three apps.
import { currentUser, login, logout, register } from "./api.js";
import { errorText, field, h, mount, notify } from "./ui.js";

/** Fill `slot` with "Signed in as X (role) [Log out]" or a [Log in] button; `allowRegister` adds sign-up. */
export function sessionControls(slot, { allowRegister = false, onChange = () => {} } = {}) {
  const dialog = buildDialog(allowRegister);
  document.body.append(dialog);
  const render = () => {
    const user = currentUser();
    if (user) {
      mount(slot,
        h("span", { class: "who" }, `Signed in as ${user.email} (${user.role})`),
        h("button", { type: "button", class: "btn", onclick: async () => { await logout(); } }, "Log out"));
    } else {
      mount(slot, h("button", { type: "button", class: "btn", onclick: () => openLogin() }, "Log in"));
    }
  };
  window.addEventListener("auth-changed", () => {
    render();
    onChange(currentUser());
  });
  render();
  const openLogin = () => {
    dialog.querySelector(".notice").hidden = true;
    dialog.showModal();
    dialog.querySelector("input").focus();
  };
  return { openLogin };
}

function buildDialog(allowRegister) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", {
    type: "password", name: "password", autocomplete: "current-password", required: true, minlength: 1,
  });
  const displayName = h("input", { type: "text", name: "display_name", autocomplete: "name" });
  const nameField = field("Your name", displayName);
  nameField.hidden = true;
  const message = h("p", { class: "notice", role: "alert", hidden: true });
  const title = h("h2", { id: "login-title" }, "Log in");
  const submit = h("button", { type: "submit", class: "btn" }, "Log in");
  let mode = "login";
  const switcher = h("button", { type: "button", class: "btn secondary", onclick: () => {
    mode = mode === "login" ? "register" : "login";
    const reg = mode === "register";
    title.textContent = reg ? "Create an account" : "Log in";
    submit.textContent = reg ? "Create account" : "Log in";
    switcher.textContent = reg ? "I have an account" : "Create an account";
    nameField.hidden = !reg;
    password.autocomplete = reg ? "new-password" : "current-password";
  } }, "Create an account");
  const dialog = h("dialog", { "aria-labelledby": "login-title" });
  const form = h("form", { method: "dialog", onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      if (mode === "register") await register(email.value.trim(), password.value, displayName.value.trim() || email.value.trim());
      else await login(email.value.trim(), password.value);
      password.value = "";
      dialog.close();
    } catch (err) {
      notify(message, errorText(err), "error");
    } finally {
      submit.disabled = false;
    }
  } },
  title, message, field("Email", email), field("Password", password), nameField,
  h("div", { class: "btn-row" }, submit, allowRegister ? switcher : null,
    h("button", { type: "button", class: "btn secondary", onclick: () => dialog.close() }, "Cancel")));
  dialog.append(form);
  return dialog;
}
