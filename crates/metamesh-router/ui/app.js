// metamesh web UI — entry point (loaded by index.html as a module).
//
// Boots the page: asks whoami; signed out (signedIn: false) → the sign-in form; signed in → the header
// (principal, nav, sign-out) and the page named by the hash (#/search, #/entity, #/lineage,
// #/audit). Modules: dom.js (helpers, API client), pages.js (search, entity, audit),
// lineage.js + layout.js (the lineage explorer). No build step, no dependencies.

import { el, replace, api, showError, setUnauthorizedHandler, currentRoute } from "./dom.js";
import { renderSearch, renderEntity, renderAudit } from "./pages.js";
import { renderLineage } from "./lineage.js";

const app = {
  me: null, // the whoami answer while signed in
  routeSeq: 0, // bumped on every navigation; late answers of older pages are dropped
};

const PAGES = {
  search: { render: renderSearch, title: "Search", nav: "nav-search" },
  entity: { render: renderEntity, title: "Entity", nav: null },
  lineage: { render: renderLineage, title: "Lineage", nav: null },
  audit: { render: renderAudit, title: "Audit", nav: "nav-audit" },
};

// A last line of defence: nothing should reach these, but if it does, say so on the page
// instead of leaving an uncaught error in the console.
window.addEventListener("error", (ev) => {
  ev.preventDefault();
  showError(`Unexpected error: ${ev.message || "unknown"}`);
});
window.addEventListener("unhandledrejection", (ev) => {
  ev.preventDefault();
  showError(`Unexpected error: ${(ev.reason && ev.reason.message) || String(ev.reason)}`);
});

setUnauthorizedHandler(() => showSignIn("You are signed out (the session may have expired). Sign in again."));
window.addEventListener("hashchange", route);
boot();

async function boot() {
  // whoami answers 200 {"signedIn": false} to a browser without credentials (no 401 in the
  // console on every visit); 401 still comes when a session expired mid-way.
  const who = await api("whoami", { quiet401: true });
  if (who.ok && who.data && who.data.signedIn !== false) signedIn(who.data);
  else if (who.ok || who.status === 401) showSignIn("");
  else showUnreachable(who.error);
}

function showUnreachable(message) {
  showError(message);
  const retry = el("button", { type: "button", id: "retry" }, "Try again");
  retry.addEventListener("click", () => {
    showError("");
    boot();
  });
  replace(document.getElementById("view"), el("p", {}, "The metamesh router did not answer. "), retry);
}

function signedIn(me) {
  app.me = me || {};
  renderHeader(app.me);
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    history.replaceState(null, "", "#/search");
  }
  route();
}

/** Renders the page the hash names (only while signed in). */
function route() {
  if (!app.me) return;
  const seq = ++app.routeSeq;
  const ctx = { me: app.me, isCurrent: () => seq === app.routeSeq };
  const { name, params } = currentRoute();
  const page = PAGES[name];
  showError("");
  for (const link of document.querySelectorAll("#site-nav a")) {
    if (page && link.id === page.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page ? page.title : "Not found"} — metamesh`;
  const view = document.getElementById("view");
  if (!page) {
    replace(view, el("section", { class: "not-found" }, el("h1", {}, "Page not found"),
      el("p", {}, el("a", { href: "#/search" }, "Go to search"))));
    return;
  }
  page.render(view, params, ctx);
}

// ---------------------------------------------------------------------------------------------
// Header

function renderHeader(me) {
  const nav = document.getElementById("site-nav");
  const account = document.getElementById("account");
  if (!me) {
    replace(nav);
    replace(account);
    return;
  }
  replace(nav, el("ul", {},
    el("li", {}, el("a", { id: "nav-search", href: "#/search" }, "Search")),
    me.auditor ? el("li", {}, el("a", { id: "nav-audit", href: "#/audit" }, "Audit")) : []));
  const tenants = (me.tenants || []).map((t) => `${t.name}${t.shardGroup ? ` (${t.shardGroup})` : ""}${t.read ? "" : ", discover only"}`);
  const signout = el("button", { id: "signout", type: "button" }, "Sign out");
  signout.addEventListener("click", signOut);
  replace(account,
    el("span", { id: "whoami", title: tenants.length ? `Tenants: ${tenants.join("; ")}` : "No tenants" },
      el("span", { class: "visually-hidden" }, "Signed in as "),
      el("span", { class: "principal" }, me.principal || "?"),
      me.via ? el("span", { class: "via muted" }, ` via ${me.via}`) : []),
    signout);
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sign-out

function showSignIn(message) {
  const wasSignedIn = app.me !== null;
  app.me = null;
  app.routeSeq++;
  renderHeader(null);
  document.title = "Sign in — metamesh";
  const existing = document.getElementById("signin");
  if (existing && !wasSignedIn) {
    document.getElementById("signin-error").textContent = message;
    return;
  }
  const input = el("input", { id: "apikey", name: "apikey", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = el("p", { id: "signin-error", role: "alert" }, message);
  const form = el("form", { id: "signin", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "Sign in to metamesh"),
    el("p", {}, "Paste an API key. A browser holding a client certificate from the mesh CA is signed in by it; ",
      "if you imported one, reload the page."),
    el("label", { for: "apikey" }, "API key"), input,
    el("button", { id: "signin-submit", type: "submit" }, "Sign in"),
    error,
    el("p", { class: "muted" }, "The session lasts 8 hours and only allows reading."));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn(input, error, form);
  });
  replace(document.getElementById("view"), el("section", { class: "signin" }, form));
  input.focus();
}

async function signIn(input, error, form) {
  const apiKey = input.value.trim();
  if (!apiKey) {
    error.textContent = "Enter an API key.";
    return;
  }
  error.textContent = "";
  form.setAttribute("aria-busy", "true");
  const result = await api("session", { method: "POST", body: { apiKey }, quiet401: true });
  form.removeAttribute("aria-busy");
  if (!result.ok) {
    error.textContent = result.status === 401 ? `Wrong API key: ${result.error}` : result.error;
    return;
  }
  input.value = "";
  const who = await api("whoami", { quiet401: true });
  if (who.ok && who.data && who.data.signedIn !== false) signedIn(who.data);
  else error.textContent = `Signed in, but whoami failed: ${who.error}`;
}

async function signOut() {
  const result = await api("session", { method: "DELETE", quiet401: true });
  const via = app.me && app.me.via;
  app.me = {}; // so that showSignIn rebuilds the form
  showSignIn(result.ok || result.status === 401 ? "" : `Signing out failed: ${result.error}`);
  if (via === "certificate") {
    document.getElementById("signin-error").textContent =
      "Signed out of the session. Your browser still holds a client certificate: reloading signs you in with it.";
  }
}
