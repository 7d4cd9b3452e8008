// The router's public API, same origin, with tokens kept in sessionStorage.

import { addDays, itemsOf, localDate } from "./ui.js";

const STORE = "cinema.auth";

/** An answer that was not 2xx; `body` is the service's error body when it sent one. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `request failed with status ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.error || "http_error";
  }
}

/** The stored token pair, or null. */
export function getAuth() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) || "null");
  } catch {
    return null;
  }
}

function setAuth(pair) {
  if (pair) sessionStorage.setItem(STORE, JSON.stringify(pair));
  else sessionStorage.removeItem(STORE);
  window.dispatchEvent(new CustomEvent("auth-changed"));
}

function decodeJwt(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="));
    return JSON.parse(decodeURIComponent(escape(json)));
  } catch {
    return null;
  }
}

/** Claims of the current access token ({sub, role, cinemas, exp}) plus the email, or null. */
export function currentUser() {
  const auth = getAuth();
  if (!auth || !auth.access_token) return null;
  const claims = decodeJwt(auth.access_token);
  return claims ? { ...claims, email: auth.email || claims.email || claims.sub } : null;
}

function pairFrom(body, email) {
  // Accept both `access_token`/`refresh_token` and short `access`/`refresh` names.
  const access = body.access_token || body.access;
  const refresh = body.refresh_token || body.refresh;
  if (!access) throw new ApiError(500, { error: "bad_token_response", detail: "no access token" });
  return { access_token: access, refresh_token: refresh, email };
}

async function send(path, { method = "GET", body, headers = {}, token, cache } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (cache) init.cache = cache;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { error: "network_error", detail: "cannot reach the server; check your connection" });
  }
  if (response.status === 204 || response.status === 304) return { response, data: null, text: "" };
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: "bad_response", detail: text.slice(0, 200) || response.statusText };
  }
  return { response, data, text };
}

// Answers worth trying again: no answer at all, a proxy error, an overloaded or unavailable
// region. Only for requests that are safe to repeat: reads, and writes with an Idempotency-Key.
const RETRIED = new Set([0, 502, 503]);
const MAX_RETRIES = 3;
const MAX_WAIT_S = 10;

function waitSeconds(response) {
  const told = Number(response?.headers.get("Retry-After"));
  const base = Number.isFinite(told) && told > 0 ? Math.min(told, MAX_WAIT_S) : 1;
  return base + Math.random(); // jitter: a rush's clients do not all come back at once
}

/** `send`, repeated after the server's Retry-After (plus jitter) while that may help. */
async function sendRetrying(path, options, repeatable) {
  for (let attempt = 0; ; attempt += 1) {
    let result = null;
    let failure = null;
    try {
      result = await send(path, options);
    } catch (err) {
      failure = err;
    }
    const status = result ? result.response.status : 0;
    if (!repeatable || attempt >= MAX_RETRIES || !RETRIED.has(status)) {
      if (failure) throw failure;
      return result;
    }
    await new Promise((done) => setTimeout(done, waitSeconds(result?.response) * 1000));
  }
}

let refreshing = null;

/** Trade the refresh token for a new pair once; concurrent callers share the attempt. */
async function refreshTokens() {
  const auth = getAuth();
  if (!auth || !auth.refresh_token) return false;
  refreshing ??= (async () => {
    try {
      const { response, data } = await send("/auth/refresh", {
        method: "POST",
        body: { refresh_token: auth.refresh_token },
      });
      if (!response.ok) {
        setAuth(null);
        return false;
      }
      setAuth(pairFrom(data, auth.email));
      return true;
    } finally {
      setTimeout(() => (refreshing = null), 0);
    }
  })();
  return refreshing;
}

/**
 * Call the API; throws ApiError for non-2xx. Options: method, body, idempotencyKey, auth (default
 * true: send the token and refresh it once on 401), allow (statuses to return instead of throw),
 * text (answer the body as text, for a document that is not JSON such as an SVG image).
 * A read or a keyed write that gets no answer, 502 or 503 is tried again up to 3 times, after
 * the Retry-After the server gave.
 */
export async function api(path, opts = {}) {
  const { method = "GET", body, idempotencyKey, auth = true, allow = [], headers = {}, text = false } = opts;
  const extra = { ...headers };
  if (idempotencyKey) extra["Idempotency-Key"] = idempotencyKey;
  const token = auth ? getAuth()?.access_token : undefined;
  const repeatable = method === "GET" || Boolean(idempotencyKey);
  let answer = await sendRetrying(path, { method, body, headers: extra, token }, repeatable);
  if (answer.response.status === 401 && token && (await refreshTokens())) {
    answer = await sendRetrying(path, {
      method, body, headers: extra, token: getAuth()?.access_token,
    }, repeatable);
  }
  const { response, data } = answer;
  if (response.ok || allow.includes(response.status)) return text ? answer.text : data;
  throw new ApiError(response.status, data);
}

/** Log in with email and password; stores the token pair. */
export async function login(email, password) {
  const data = await api("/auth/login", { method: "POST", body: { email, password }, auth: false });
  setAuth(pairFrom(data, email));
  return currentUser();
}

/** Create a customer account, then log in. */
export async function register(email, password, displayName) {
  await api("/auth/register", {
    method: "POST",
    body: { email, password, display_name: displayName },
    auth: false,
  });
  return login(email, password);
}

/** Revoke the refresh token (best effort) and forget both tokens. */
export async function logout() {
  const auth = getAuth();
  if (auth && auth.refresh_token) {
    try {
      await api("/auth/logout", { method: "POST", body: { refresh_token: auth.refresh_token } });
    } catch {
      // The tokens are dropped locally either way.
    }
  }
  setAuth(null);
}

/**
 * GET a public JSON document unless it is unchanged since `etag`: answers {data, etag}, with
 * data null on 304. Polling this way costs the server a query but no body when nothing moved.
 * `extraHeaders` go along (an admission pass, so an admitted customer's map goes first).
 */
export async function getIfChanged(path, etag = null, extraHeaders = {}) {
  const headers = etag ? { ...extraHeaders, "If-None-Match": etag } : { ...extraHeaders };
  // no-store: the page, not the browser cache, owns the validator (a 304 must reach us).
  const { response, data } = await sendRetrying(path, { headers, cache: "no-store" }, true);
  if (response.status === 304) return { data: null, etag };
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get("ETag") };
}

/** A cinema's shows on its local `day`, earliest first. */
export async function showsOn(cinema, day) {
  // The API's date range may be read in UTC: ask a day wider and keep the cinema's local day.
  const query = new URLSearchParams({ date_from: addDays(day, -1), date_to: addDays(day, 1), limit: "200" });
  return itemsOf(await api(`/cinemas/${encodeURIComponent(cinema.id)}/shows?${query}`))
    .filter((s) => localDate(s.starts_at, s.timezone) === day)
    .sort((a, b) => a.starts_at.localeCompare(b.starts_at));
}
