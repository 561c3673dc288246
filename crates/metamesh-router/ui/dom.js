// metamesh web UI — shared helpers: DOM building, the JSON API client, hash routes, formatting.
//
// Everything from the server is untrusted text: it goes into the page through textContent /
// createTextNode / setAttribute only. (The two server-sanitized HTML fields are inserted by
// the entity page itself, nowhere else.)

export const API = "/api/mesh/v1";

const SVG_NS = "http://www.w3.org/2000/svg";

/** Sets attributes on `node`: `class` / `text` are shorthands, `null`/`false` values are skipped. */
function applyAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

/** Appends children: nodes as they are, anything else (strings, numbers) as text. */
function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** `el("a", {href: "#/x", class: "y"}, "text", otherNode)` */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  applyAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  applyAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

/** Replaces the content of `node` with `children`. */
export function replace(node, ...children) {
  node.replaceChildren();
  appendAll(node, children);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Global error line and sign-in hook

let onUnauthorized = () => {};

/** Called by the app: what to do when any API call answers 401 (show the sign-in form). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** Shows `message` in the global `#error` line (empty string clears it). */
export function showError(message) {
  const line = document.getElementById("error");
  if (line) line.textContent = message || "";
}

// ---------------------------------------------------------------------------------------------
// API client

/**
 * Calls the JSON API. Never throws: resolves to `{ok, status, data, error}` where `status` is 0
 * for a network failure and `error` is the server's `error` message (or a generic one).
 * A 401 also calls the unauthorized handler unless `opts.quiet401`.
 */
export async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", credentials: "same-origin", headers: { Accept: "application/json" } };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  let response;
  try {
    response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  } catch (e) {
    return { ok: false, status: 0, data: null, error: "The server cannot be reached (network error)." };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (e) {
      data = null; // not JSON (or empty): the status says enough
    }
  }
  const result = { ok: response.ok, status: response.status, data, error: "" };
  if (!response.ok) {
    // The router's errors are {"code": <status>, "message": "..."}.
    result.error = (data && typeof data.message === "string" && data.message) || `${response.status} ${response.statusText}`;
    if (response.status === 401 && !opts.quiet401) onUnauthorized();
  }
  return result;
}

/** A human sentence for a failed API result, for the page or section it concerns. */
export function failureText(result, what) {
  switch (result.status) {
    case 0: return result.error;
    case 401: return "You are signed out. Sign in again.";
    case 403: return `Not allowed: you may not read ${what}. (${result.error})`;
    case 404: return `Not found: ${what} does not exist or you may not read it.`;
    default: return `Could not load ${what}: ${result.error}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Query strings and hash routes

/** `?a=1&b=x` from an object, skipping empty values; values are encodeURIComponent-ed. */
export function query(params) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "" || value === false) continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/** The current route: `#/lineage?urn=x` → `{name: "lineage", params: {urn: "x"}}`. */
export function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const q = hash.indexOf("?");
  const name = (q < 0 ? hash : hash.slice(0, q)) || "search";
  const params = {};
  for (const [key, value] of new URLSearchParams(q < 0 ? "" : hash.slice(q + 1))) params[key] = value;
  return { name, params };
}

export function entityHref(urn) {
  return `#/entity${query({ urn })}`;
}

export function lineageHref(urn, extra = {}) {
  return `#/lineage${query({ urn, direction: "both", depth: 3, ...extra })}`;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** Milliseconds (number or string) → local ISO-like "YYYY-MM-DD HH:MM:SS"; "—" when absent. */
export function formatTime(ms) {
  const n = Number(ms);
  if (!ms || !Number.isFinite(n) || n <= 0) return "—";
  const d = new Date(n);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A `<time>` element: local text, UTC ISO in `datetime`. */
export function timeEl(ms) {
  const n = Number(ms);
  const text = formatTime(ms);
  if (text === "—") return document.createTextNode(text);
  const iso = new Date(n).toISOString();
  return el("time", { datetime: iso, title: iso }, text);
}

/** Milliseconds → the value of a datetime-local input (local time, seconds precision). */
export function toDatetimeLocal(ms) {
  const n = Number(ms);
  if (!ms || !Number.isFinite(n)) return "";
  return formatTime(n).replace(" ", "T");
}

/** A datetime-local value → milliseconds (local time), or "" when empty/invalid. */
export function fromDatetimeLocal(value) {
  if (!value) return "";
  const ms = new Date(value).getTime(); // "YYYY-MM-DDTHH:MM[:SS]" parses as local time
  return Number.isFinite(ms) ? String(ms) : "";
}

/** "CODE: detail (shard)" for each partial-answer reason. */
export function reasonTexts(reasons) {
  return (reasons || []).map((r) => `${r.code || "UNKNOWN"}: ${r.detail || ""}${r.shard ? ` (${r.shard})` : ""}`);
}

/** Fills a partial-answer banner (or hides it when the answer is complete). */
export function showPartial(banner, partial, reasons, intro = "Partial answer — part of it is missing:") {
  const texts = reasonTexts(reasons);
  banner.hidden = !partial && texts.length === 0;
  replace(banner, banner.hidden ? [] : [el("strong", {}, intro), el("ul", {}, texts.map((t) => el("li", {}, t)))]);
}

/** English plural of a kind for group labels: "run" → "runs", "process" → "processes". */
export function plural(word, count) {
  if (count === 1) return word;
  if (/(s|x|ch|sh)$/.test(word)) return `${word}es`;
  if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`;
  return `${word}s`;
}
