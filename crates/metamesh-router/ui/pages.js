// metamesh web UI — the search (#/search), entity (#/entity) and audit (#/audit) pages.
//
// Each render function takes the main element, the hash parameters and a context
// {me, isCurrent()}; isCurrent() turns false once the user navigated elsewhere, so late
// answers are dropped instead of drawn over the next page.

import {
  el, replace, api, API, failureText, showError, query, entityHref, lineageHref,
  timeEl, toDatetimeLocal, fromDatetimeLocal, showPartial,
} from "./dom.js";

const PAGE_SIZE = 25;

/** Places `message` in a section and in the global error line (401s are handled globally). */
function sectionFailure(section, result, what) {
  const message = failureText(result, what);
  if (result.status !== 401) showError(message);
  section.append(el("p", { class: result.status === 403 ? "not-allowed" : "failure" }, message));
}

function badge(text, cls) {
  return el("span", { class: `badge ${cls || ""}`.trim() }, text);
}

// =============================================================================================
// Search

const FACETS = [["kind", "Kind"], ["tenant", "Tenant"], ["type", "Type"], ["owner", "Owner"], ["tag", "Tag"]];

function searchState(params) {
  const filters = {};
  for (const [facet] of FACETS) filters[facet] = (params[facet] || "").split(",").filter(Boolean);
  return { q: params.q || "", filters };
}

function searchHash({ q, filters }) {
  const flat = {};
  for (const [facet] of FACETS) flat[facet] = filters[facet].join(",");
  return `#/search${query({ q, ...flat })}`;
}

/** Renders the search page; a page already shown is updated in place (keeps the focus). */
export function renderSearch(view, params, ctx) {
  const state = searchState(params);
  let section = document.getElementById("search");
  if (!section || !view.contains(section)) section = buildSearch(view);
  const input = document.getElementById("search-input");
  if (input.value !== state.q) input.value = state.q;
  runSearch(state, ctx, "");
}

function buildSearch(view) {
  const input = el("input", { id: "search-input", type: "search", name: "q", placeholder: "datasets, models, runs…", autocomplete: "off" });
  const form = el("form", { id: "search-form", role: "search" },
    el("label", { for: "search-input" }, "Search"), input,
    el("button", { type: "submit", id: "search-submit" }, "Search"));
  const section = el("section", { id: "search", "aria-labelledby": "search-title" },
    el("h1", { id: "search-title", class: "visually-hidden" }, "Search"),
    form,
    el("div", { id: "search-partial", class: "banner warning", role: "status", hidden: true }),
    el("div", { class: "search-body" },
      el("aside", { id: "facets", "aria-label": "Filters" }),
      el("div", { class: "search-results" },
        el("p", { id: "search-count", class: "muted", "aria-live": "polite" }),
        el("ul", { id: "results" }),
        el("div", { id: "search-more-slot" }))));
  replace(view, section);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const state = searchState(currentSearchParams());
    state.q = input.value.trim();
    navigate(searchHash(state));
  });
  return section;
}

/** The filters of the page as they are in the hash now. */
function currentSearchParams() {
  const hash = location.hash;
  const q = hash.indexOf("?");
  return Object.fromEntries(new URLSearchParams(q < 0 ? "" : hash.slice(q + 1)));
}

/** Sets the hash; when it does not change, re-renders anyway (hashchange would not fire). */
function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

let searchSeq = 0;

async function runSearch(state, ctx, pageToken) {
  const seq = ++searchSeq;
  const flat = {};
  for (const [facet] of FACETS) flat[facet] = state.filters[facet].join(",");
  const result = await api(`search${query({ q: state.q, ...flat, pageSize: PAGE_SIZE, pageToken })}`);
  if (seq !== searchSeq || !ctx.isCurrent()) return;
  const results = document.getElementById("results");
  const slot = document.getElementById("search-more-slot");
  const count = document.getElementById("search-count");
  if (!pageToken) {
    replace(results);
    document.getElementById("search-empty")?.remove();
  }
  replace(slot);
  if (!result.ok) {
    count.textContent = "";
    if (result.status !== 401) showError(failureText(result, "the search results"));
    return;
  }
  const reply = result.data || {};
  const hits = reply.hits || [];
  for (const hit of hits) results.append(hitItem(hit));
  if (!pageToken) {
    renderFacets(state, reply.facets || {});
    showPartial(document.getElementById("search-partial"), reply.partial, reply.partialReasons);
    if (hits.length === 0) results.after(el("p", { id: "search-empty" }, "No results."));
  } else if (reply.partial) {
    showPartial(document.getElementById("search-partial"), true, reply.partialReasons);
  }
  const shown = results.children.length;
  count.textContent = `${shown} ${shown === 1 ? "result" : "results"}${reply.nextPageToken ? " (more available)" : ""}`;
  if (reply.nextPageToken) {
    const more = el("button", { id: "search-more", type: "button" }, "More");
    more.addEventListener("click", () => {
      more.disabled = true;
      runSearch(state, ctx, reply.nextPageToken);
    });
    slot.append(more);
  }
}

function hitItem(hit) {
  const tags = (hit.tags || []).map((t) => el("li", { class: "tag" }, t));
  return el("li", { class: "result" },
    el("a", { class: "result-link", href: entityHref(hit.urn) }, el("span", { class: "result-name" }, hit.name || hit.urn)),
    " ", badge(hit.kind || "", "result-kind"), " ", badge(hit.tenant || "", "result-tenant"),
    hit.deleted ? [" ", badge("deleted", "deleted")] : [],
    el("p", { class: "result-snippet" }, hit.snippet || hit.description || ""),
    tags.length ? el("ul", { class: "result-tags tags", "aria-label": "Tags" }, tags) : [],
    el("p", { class: "result-meta muted" },
      hit.typeName ? `${hit.typeName} · ` : "", hit.owner ? `owner ${hit.owner} · ` : "",
      "updated ", timeEl(hit.updatedAtMs)));
}

/** One checkbox per facet value (count in the label); checked values stay even at count 0. */
function renderFacets(state, facets) {
  const box = document.getElementById("facets");
  const active = document.activeElement;
  const refocus = active && active.classList.contains("facet") ? [active.dataset.facet, active.dataset.value] : null;
  const groups = [];
  for (const [facet, title] of FACETS) {
    const counts = { ...(facets[facet] || {}) };
    for (const value of state.filters[facet]) if (!(value in counts)) counts[value] = 0;
    const values = Object.keys(counts).sort((a, b) => counts[b] - counts[a] || a.localeCompare(b));
    if (values.length === 0) continue;
    const items = values.map((value) => {
      const input = el("input", {
        type: "checkbox", class: "facet", "data-facet": facet, "data-value": value,
        checked: state.filters[facet].includes(value),
      });
      input.addEventListener("change", () => toggleFacet(state, facet, value, input.checked));
      return el("li", {}, el("label", {}, input, " ", el("span", { class: "facet-value" }, value),
        " ", el("span", { class: "facet-count" }, `(${counts[value]})`)));
    });
    groups.push(el("fieldset", { class: "facet-group" }, el("legend", {}, title), el("ul", {}, items)));
  }
  replace(box, groups.length ? [el("h2", {}, "Filters"), groups] : []);
  if (refocus) {
    const again = [...box.querySelectorAll("input.facet")].find((i) => i.dataset.facet === refocus[0] && i.dataset.value === refocus[1]);
    if (again) again.focus();
  }
}

function toggleFacet(state, facet, value, checked) {
  const values = state.filters[facet].filter((v) => v !== value);
  if (checked) values.push(value);
  navigate(searchHash({ q: state.q, filters: { ...state.filters, [facet]: values } }));
}

// =============================================================================================
// Entity

export async function renderEntity(view, params, ctx) {
  const urn = params.urn || "";
  const section = el("section", { id: "entity", "aria-busy": "true" }, el("p", { class: "muted" }, "Loading…"));
  replace(view, section);
  if (!urn) {
    replace(section, el("p", { class: "failure" }, "No entity given."));
    return;
  }
  const result = await api(`entity${query({ urn })}`);
  if (!ctx.isCurrent()) return;
  section.removeAttribute("aria-busy");
  replace(section);
  if (!result.ok) {
    section.append(el("h1", { id: "entity-name" }, urn));
    sectionFailure(section, result, urn);
    return;
  }
  const reply = result.data || {};
  const e = reply.entity || {};
  document.title = `${e.name || e.urn} — metamesh`;
  section.append(
    el("h1", { id: "entity-name" }, e.name || e.urn || urn, e.deleted ? [" ", badge("deleted", "deleted")] : []),
    el("p", { class: "actions" }, el("a", { id: "open-lineage", href: lineageHref(e.urn || urn) }, "Open the lineage view")),
    entityFields(e),
    el("h2", {}, "Tags"), tagList(e.tags || []),
    el("h2", {}, "Description"), description(e),
    el("h2", {}, "Properties"), el("pre", { id: "entity-properties" }, JSON.stringify(e.properties ?? {}, null, 2)),
    lineageSummary(reply.lineage || {}),
    el("h2", {}, "Documents"), documents(reply.documents || []),
    el("h2", {}, "Versions"), versionsTable(reply.versions || []),
    el("h2", {}, "Audit trail"), auditTrail(reply.audit || { allowed: false, records: [] }));
}

function entityFields(e) {
  const row = (term, id, ...value) => [el("dt", {}, term), el("dd", { id }, ...value)];
  const who = (ms, by) => [timeEl(ms), by ? ` by ${by}` : ""];
  return el("dl", { class: "fields" },
    row("URN", "entity-urn", el("code", {}, e.urn || "")),
    row("Kind", "entity-kind", e.kind || ""),
    row("Tenant", "entity-tenant", e.tenant || ""),
    row("Owner", "entity-owner", e.owner || "—"),
    row("Status", "entity-status", e.status || "—", e.deleted ? " (deleted)" : ""),
    row("Schema", "entity-schema", e.typeName ? `${e.typeName} v${e.schemaVersion ?? "?"}` : "—"),
    row("Version", "entity-version", String(e.version ?? "—"), e.revision !== undefined ? ` (revision ${e.revision})` : ""),
    row("Created", "entity-created", ...who(e.createdAtMs, e.createdBy)),
    row("Updated", "entity-updated", ...who(e.updatedAtMs, e.updatedBy)));
}

function tagList(tags) {
  const list = el("ul", { id: "entity-tags", class: "tags" }, tags.map((t) => el("li", { class: "tag" }, t)));
  return el("div", {}, list, tags.length ? null : el("p", { class: "muted" }, "No tags."));
}

/** The server's sanitized HTML (pulldown-cmark + ammonia): one of the two innerHTML uses. */
function description(e) {
  const box = el("div", { id: "entity-description", class: "markdown" });
  if (e.descriptionHtml) box.innerHTML = e.descriptionHtml;
  else if (e.description) box.textContent = e.description;
  else box.append(el("p", { class: "muted" }, "No description."));
  return box;
}

function neighbourList(id, nodes) {
  const items = nodes.map((n) => (n.placeholder || !n.urn
    ? el("li", { class: "placeholder" }, `hidden ${n.kind} in ${n.tenant}`)
    : el("li", {}, el("a", { href: entityHref(n.urn) }, n.name || n.urn), " ",
      el("span", { class: "muted" }, `${n.kind} · ${n.tenant}`), n.deleted ? [" ", badge("deleted", "deleted")] : [])));
  const list = el("ul", { id, class: "neighbours" }, items);
  return items.length ? list : [list, el("p", { class: "muted" }, "None known.")];
}

function lineageSummary(lineage) {
  const banner = el("div", { id: "entity-lineage-partial", class: "banner warning", role: "status", hidden: true });
  showPartial(banner, lineage.partial, lineage.partialReasons);
  return el("div", { class: "lineage-summary" },
    el("h2", {}, "Lineage"), banner,
    el("div", { class: "two-columns" },
      el("div", {}, el("h3", {}, "Upstream"), neighbourList("entity-upstream", lineage.upstream || [])),
      el("div", {}, el("h3", {}, "Downstream"), neighbourList("entity-downstream", lineage.downstream || []))));
}

/** Documents: titles as text, bodies as the server's sanitized HTML. */
function documents(docs) {
  const box = el("div", { id: "entity-documents" });
  if (docs.length === 0) box.append(el("p", { class: "muted" }, "No documents."));
  for (const d of docs) {
    const body = el("div", { class: "document-body markdown" });
    body.innerHTML = d.html || "";
    box.append(el("article", { class: "document" },
      el("h3", { class: "document-title" }, d.title || "(untitled)"),
      el("p", { class: "muted" }, `version ${d.version ?? "?"} · created `, timeEl(d.createdAtMs), d.createdBy ? ` by ${d.createdBy}` : ""),
      body));
  }
  return box;
}

function table(id, caption, headers, rows) {
  return el("div", { class: "table-wrap" }, el("table", { id },
    el("caption", { class: "visually-hidden" }, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows)));
}

function versionsTable(versions) {
  const rows = versions.map((v) => el("tr", { class: v.deleted ? "version deleted" : "version" },
    el("td", {}, String(v.version ?? "")), el("td", {}, String(v.revision ?? "")), el("td", {}, timeEl(v.updatedAtMs)),
    el("td", {}, v.updatedBy || ""), el("td", {}, v.status || ""),
    el("td", {}, v.typeName ? `${v.typeName} v${v.schemaVersion ?? "?"}` : ""), el("td", {}, v.deleted ? "yes" : "")));
  return table("entity-versions", "Versions, newest first", ["Version", "Revision", "Updated", "By", "Status", "Schema", "Deleted"], rows);
}

function auditTrail(audit) {
  const box = el("div", { id: "entity-audit" });
  if (!audit.allowed) {
    box.append(el("p", { class: "not-allowed" }, "Not allowed: you may not read the audit log of this entity."));
  } else if ((audit.records || []).length === 0) {
    box.append(el("p", { class: "muted" }, "No audit records."));
  } else {
    box.append(auditTable("entity-audit-records", audit.records));
  }
  return box;
}

// =============================================================================================
// Audit

const AUDIT_HEADERS = ["Time", "Shard", "Seq", "Principal", "Tenant", "Action", "Resource", "Decision"];
const AUDIT_FILTERS = ["principal", "tenant", "action", "resource", "decision", "startMs", "endMs", "shard"];

function auditRow(r) {
  const decision = r.allowed ? "allow" : "deny";
  return el("tr", { class: `audit-record ${decision}` },
    el("td", {}, timeEl(r.timeMs)), el("td", {}, r.shard || ""), el("td", {}, String(r.seq ?? "")),
    el("td", {}, r.principal || ""), el("td", {}, r.tenant || ""), el("td", {}, r.action || ""),
    el("td", {}, r.resource || ""), el("td", {}, Number(r.count) > 1 ? `${decision} ×${r.count}` : decision));
}

function auditTable(id, records) {
  return table(id, "Audit records", AUDIT_HEADERS, records.map(auditRow));
}

export function renderAudit(view, params, ctx) {
  const section = el("section", { id: "audit", "aria-labelledby": "audit-title" }, el("h1", { id: "audit-title" }, "Audit log"));
  replace(view, section);
  if (!ctx.me.auditor) {
    section.append(el("p", { class: "not-allowed" }, "Not allowed: the audit log is for auditors."));
    return;
  }
  const filters = {};
  for (const name of AUDIT_FILTERS) filters[name] = params[name] || "";
  const records = auditTable("audit-records", []);
  const tbody = records.querySelector("tbody");
  const partial = el("div", { id: "audit-partial", class: "banner warning", role: "status", hidden: true });
  const moreSlot = el("div", {});
  const verify = el("ul", { id: "audit-verify" });
  const reverify = el("button", { type: "button", id: "audit-reverify" }, "Verify again");
  reverify.addEventListener("click", () => runVerify(verify, ctx));
  section.append(auditForm(filters), exportLinks(filters),
    el("h2", {}, "Records"), partial, records, el("p", { id: "audit-count", class: "muted", "aria-live": "polite" }), moreSlot,
    el("h2", {}, "Verification per shard"), verify, reverify);
  loadRecords({ filters, tbody, partial, moreSlot, ctx }, "");
  runVerify(verify, ctx);
}

function auditForm(filters) {
  const text = (name, label) => [el("label", { for: `audit-${name}` }, label),
    el("input", { id: `audit-${name}`, name, type: "text", value: filters[name] })];
  const when = (name, label) => [el("label", { for: `audit-${name}` }, label),
    el("input", { id: `audit-${name}`, name, type: "datetime-local", step: 1, value: toDatetimeLocal(filters[name]) })];
  const decision = el("select", { id: "audit-decision", name: "decision" },
    [["", "any"], ["allow", "allow"], ["deny", "deny"]].map(([v, t]) => el("option", { value: v, selected: filters.decision === v }, t)));
  const form = el("form", { id: "audit-filter", class: "controls", "aria-label": "Audit filters" },
    text("principal", "Principal"), text("tenant", "Tenant"), text("action", "Action"), text("resource", "Resource"),
    el("label", { for: "audit-decision" }, "Decision"), decision,
    when("startMs", "From"), when("endMs", "Until"), text("shard", "Shard"),
    el("button", { id: "audit-submit", type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = {};
    for (const name of AUDIT_FILTERS) {
      const value = form.elements[name].value.trim();
      next[name] = name.endsWith("Ms") ? fromDatetimeLocal(value) : value;
    }
    navigate(`#/audit${query(next)}`);
  });
  return form;
}

function exportLinks(filters) {
  const link = (format, id) => el("a", {
    id, href: `${API}/audit/export${query({ format, ...filters })}`, download: `audit.${format}`,
  }, format === "jsonl" ? "Export JSONL" : "Export CSV");
  return el("p", { class: "actions" }, link("jsonl", "audit-export-jsonl"), " ", link("csv", "audit-export-csv"));
}

async function loadRecords(page, pageToken) {
  const result = await api(`audit/records${query({ ...page.filters, pageSize: 50, pageToken })}`);
  if (!page.ctx.isCurrent()) return;
  replace(page.moreSlot);
  if (!result.ok) {
    sectionFailure(page.moreSlot, result, "the audit log");
    return;
  }
  const reply = result.data || {};
  for (const r of reply.records || []) page.tbody.append(auditRow(r));
  const missing = reply.missingShards || [];
  if (reply.partial || missing.length) {
    page.partial.hidden = false;
    replace(page.partial, el("strong", {}, "Partial answer — some shards did not answer; their records are missing:"),
      el("ul", {}, missing.map((shard) => el("li", { class: "missing-shard" }, shard))));
  }
  const count = page.tbody.children.length;
  document.getElementById("audit-count").textContent = count ? `${count} records shown` : "No records match.";
  if (reply.nextPageToken) {
    const more = el("button", { id: "audit-more", type: "button" }, "More");
    more.addEventListener("click", () => {
      more.disabled = true;
      loadRecords(page, reply.nextPageToken);
    });
    page.moreSlot.append(more);
  }
}

async function runVerify(list, ctx) {
  replace(list, el("li", { class: "muted" }, "Verifying…"));
  const result = await api("audit/verify");
  if (!ctx.isCurrent()) return;
  replace(list);
  if (!result.ok) {
    list.append(el("li", { class: "failure" }, failureText(result, "the audit verification")));
    return;
  }
  for (const s of (result.data || {}).shards || []) {
    const detail = s.ok
      ? `ok — ${s.recordsChecked ?? 0} records, ${s.checkpointsChecked ?? 0} checkpoints checked`
      : `FAILED${s.firstBadSeq ? ` at seq ${s.firstBadSeq}` : ""}: ${s.reason || s.error || "unknown reason"}`;
    list.append(el("li", { class: "shard-status", "data-shard": s.shard || "", "data-ok": String(Boolean(s.ok)) },
      el("strong", {}, s.shard || "?"), ": ", detail));
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, "No shards answered."));
}
