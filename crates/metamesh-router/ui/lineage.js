// metamesh web UI — the lineage explorer (#/lineage): an SVG layered graph with pan/zoom,
// incremental expansion, kind groups for crowded layers, column-level edges and as-of queries.
//
// Model: `nodes` (Map id → NODE from the server) and `edges` (Map key → EDGE), merged by id
// from the initial answer and every expansion. Each expansion remembers what it added so that
// toggling the node again can take it back out. The drawing is rebuilt from the model on every
// change (layout.js is near-linear, so this stays fast for thousands of nodes).

import {
  el, svg, replace, api, failureText, showError, query, entityHref, lineageHref,
  toDatetimeLocal, fromDatetimeLocal, showPartial, reasonTexts, plural,
} from "./dom.js";
import { layoutGraph } from "./layout.js";

/** Most nodes one lineage answer may bring. */
const MAX_NODES = 5000;

const PALETTE = 10; // tenant colours: CSS classes tenant-c0 … tenant-c9
const ZOOM_MIN = 0.05;
const ZOOM_MAX = 3;
const DEPTH_MAX = 20;

/** Reads the view's state from the hash parameters (with defaults). */
function paramsFromHash(p) {
  const depth = Math.min(DEPTH_MAX, Math.max(1, parseInt(p.depth, 10) || 3));
  const direction = ["upstream", "downstream", "both"].includes(p.direction) ? p.direction : "both";
  return { urn: p.urn || "", direction, depth, asOf: /^\d+$/.test(p.asOf || "") ? p.asOf : "", columns: p.columns === "1" };
}

function hashOf(p) {
  return `#/lineage${query({ urn: p.urn, direction: p.direction, depth: p.depth, asOf: p.asOf, columns: p.columns ? "1" : "" })}`;
}

function isColumnEdge(e) {
  return Boolean(e.fromColumn || e.toColumn);
}

function edgeKey(e) {
  return [e.fromId, e.toId, e.kind || "", e.fromColumn || "", e.toColumn || ""].join("\u0000");
}

function nodeLabel(node) {
  return node.placeholder ? `hidden ${node.kind} in ${node.tenant}` : node.name || node.urn || node.id;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Renders the lineage page into `view`. `ctx`: {me, isCurrent()}. */
export function renderLineage(view, hashParams, ctx) {
  const params = paramsFromHash(hashParams);
  const st = {
    params, ctx, nodes: new Map(), edges: new Map(), baseNodes: new Set(), startId: "",
    expansions: new Map(), pending: new Set(), openGroups: new Set(), selected: null,
    partial: false, reasons: new Map(), transform: { x: 0, y: 0, k: 1 }, layout: null,
    elements: new Map(), ui: null,
  };
  st.ui = buildPage(view, st);
  bindCanvas(st);
  load(st);
}

// ---------------------------------------------------------------------------------------------
// Page skeleton and controls

function buildPage(view, st) {
  const p = st.params;
  const ui = {};
  ui.urn = el("input", { id: "lineage-urn", type: "text", value: p.urn, size: 40, spellcheck: "false" });
  ui.direction = el("select", { id: "lineage-direction" },
    ["upstream", "downstream", "both"].map((d) => el("option", { value: d, selected: d === p.direction }, d)));
  ui.depth = el("input", { id: "lineage-depth", type: "number", min: 1, max: DEPTH_MAX, value: p.depth });
  ui.asof = el("input", { id: "lineage-asof", type: "datetime-local", step: 1, value: toDatetimeLocal(p.asOf) });
  ui.columns = el("input", { id: "lineage-columns", type: "checkbox", checked: p.columns });
  ui.apply = el("button", { id: "lineage-apply", type: "submit" }, "Apply");
  ui.fit = el("button", { id: "lineage-fit", type: "button" }, "Fit");
  ui.zoomIn = el("button", { type: "button", class: "zoom", "aria-label": "Zoom in" }, "+");
  ui.zoomOut = el("button", { type: "button", class: "zoom", "aria-label": "Zoom out" }, "−");
  ui.form = el("form", { id: "lineage-controls", class: "controls", "aria-label": "Lineage query" },
    el("label", { for: "lineage-urn" }, "URN"), ui.urn,
    el("label", { for: "lineage-direction" }, "Direction"), ui.direction,
    el("label", { for: "lineage-depth" }, "Depth"), ui.depth,
    el("label", { for: "lineage-asof" }, "As of"), ui.asof,
    el("span", { class: "check" }, ui.columns, el("label", { for: "lineage-columns" }, "Column-level")),
    ui.apply, ui.fit, ui.zoomIn, ui.zoomOut);
  ui.partial = el("div", { id: "lineage-partial", class: "banner warning", role: "status", hidden: true });
  ui.status = el("p", { id: "lineage-status", "aria-live": "polite" }, "Loading…");
  ui.viewport = svg("g", { id: "lineage-viewport" });
  ui.svg = svg("svg", {
    id: "lineage-svg", tabindex: 0, role: "group", focusable: "true",
    "aria-label": "Lineage graph: Tab or arrow keys move between nodes, Enter expands, + and - zoom, 0 fits",
  }, arrowDefs(), ui.viewport);
  ui.details = el("aside", { id: "lineage-details", "aria-label": "Selected node", "aria-live": "polite" },
    el("p", { class: "muted" }, "Select a node to see its details."));
  ui.legend = el("div", { id: "lineage-legend", "aria-label": "Tenants" });
  const section = el("section", { id: "lineage", "aria-labelledby": "lineage-title" },
    el("h1", { id: "lineage-title" }, "Lineage"),
    ui.form, ui.partial, ui.status,
    el("div", { class: "lineage-body" }, el("div", { class: "lineage-canvas" }, ui.svg), ui.details),
    ui.legend,
    el("p", { class: "hint" }, "Drag the background to pan, wheel or +/− to zoom, 0 to fit. ",
      "Enter or Space on a node selects it and shows or hides its neighbours; arrow keys move between nodes."));
  replace(view, section);

  ui.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    applyControls(st);
  });
  ui.columns.addEventListener("change", () => {
    st.params.columns = ui.columns.checked;
    history.replaceState(null, "", hashOf(st.params));
    draw(st);
  });
  ui.fit.addEventListener("click", () => fit(st));
  ui.zoomIn.addEventListener("click", () => zoomBy(st, 1.25));
  ui.zoomOut.addEventListener("click", () => zoomBy(st, 0.8));
  return ui;
}

function arrowDefs() {
  const marker = (id, cls) => svg("marker", {
    id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
  return svg("defs", {}, marker("lineage-arrow", "arrow"), marker("lineage-arrow-column", "arrow column"));
}

/** Apply: the controls become the hash (a new history entry), which reloads the view. */
function applyControls(st) {
  const ui = st.ui;
  const next = {
    urn: ui.urn.value.trim(), direction: ui.direction.value,
    depth: Math.min(DEPTH_MAX, Math.max(1, parseInt(ui.depth.value, 10) || 3)),
    asOf: fromDatetimeLocal(ui.asof.value), columns: ui.columns.checked,
  };
  const hash = hashOf(next);
  if (hash === location.hash) {
    st.params = next;
    load(st);
  } else {
    location.hash = hash; // the router renders the view again
  }
}

// ---------------------------------------------------------------------------------------------
// Fetching and merging

function lineageUrl(urn, direction, depth, asOf) {
  // Up to 5,000 nodes per answer (the router's default is 1,000): crowded layers are grouped,
  // so the page stays responsive well past that.
  return `lineage${query({ urn, direction, depth, asOfMs: asOf, maxNodes: MAX_NODES })}`;
}

async function load(st) {
  const p = st.params;
  if (!p.urn) {
    st.ui.status.textContent = "Enter a URN above, or open the lineage from an entity page.";
    return;
  }
  st.ui.status.textContent = "Loading…";
  const result = await api(lineageUrl(p.urn, p.direction, p.depth, p.asOf));
  if (!st.ctx.isCurrent()) return;
  Object.assign(st, {
    nodes: new Map(), edges: new Map(), expansions: new Map(), openGroups: new Set(),
    selected: null, partial: false, reasons: new Map(),
  });
  if (!result.ok) {
    const message = failureText(result, `the lineage of ${p.urn}`);
    if (result.status !== 401) showError(message);
    st.ui.status.textContent = message;
    draw(st, { keepStatus: true });
    return;
  }
  const reply = result.data || {};
  st.startId = reply.start || p.urn;
  merge(st, reply, null);
  st.baseNodes = new Set(st.nodes.keys());
  draw(st);
  fit(st);
}

/** Adds a reply's nodes and edges that are not there yet; `record` collects what was added. */
function merge(st, reply, record) {
  for (const node of reply.nodes || []) {
    if (!node || !node.id || st.nodes.has(node.id)) continue;
    st.nodes.set(node.id, node);
    if (record) record.nodes.add(node.id);
  }
  for (const edge of reply.edges || []) {
    if (!edge || !edge.fromId || !edge.toId) continue;
    const key = edgeKey(edge);
    if (st.edges.has(key)) continue;
    st.edges.set(key, edge);
    if (record) record.edges.add(key);
  }
  if (reply.partial) st.partial = true;
  for (const reason of reply.partialReasons || []) st.reasons.set(reasonTexts([reason])[0], reason);
}

/** Click / Enter on a node: expand it (fetch depth 1 both ways) or take its expansion back. */
async function toggleExpansion(st, id) {
  const node = st.nodes.get(id);
  if (!node || node.placeholder || !node.urn || st.pending.has(id)) return;
  if (st.expansions.has(id)) {
    collapse(st, id);
    draw(st);
    return;
  }
  st.pending.add(id);
  st.elements.get(id)?.classList.add("loading");
  const result = await api(lineageUrl(node.urn, "both", 1, st.params.asOf));
  st.pending.delete(id);
  if (!st.ctx.isCurrent() || !st.nodes.has(id)) return;
  if (!result.ok) {
    st.elements.get(id)?.classList.remove("loading");
    if (result.status !== 401) showError(failureText(result, `the neighbours of ${nodeLabel(node)}`));
    return;
  }
  const record = { nodes: new Set(), edges: new Set() };
  merge(st, result.data || {}, record);
  st.expansions.set(id, record);
  draw(st);
}

/** Removes what an expansion added, then every non-base node cut off from the start node. */
function collapse(st, id) {
  const record = st.expansions.get(id);
  st.expansions.delete(id);
  for (const key of record.edges) st.edges.delete(key);
  const neighbours = new Map();
  const link = (a, b) => (neighbours.get(a) || neighbours.set(a, []).get(a)).push(b);
  for (const e of st.edges.values()) {
    link(e.fromId, e.toId);
    link(e.toId, e.fromId);
  }
  const reached = new Set([st.startId]);
  const queue = [st.startId];
  while (queue.length) {
    for (const next of neighbours.get(queue.pop()) || []) {
      if (!reached.has(next) && st.nodes.has(next)) {
        reached.add(next);
        queue.push(next);
      }
    }
  }
  for (const nodeId of [...st.nodes.keys()]) {
    if (reached.has(nodeId) || st.baseNodes.has(nodeId)) continue;
    st.nodes.delete(nodeId);
    st.expansions.delete(nodeId);
    if (st.selected === nodeId) st.selected = null;
  }
  for (const [key, e] of st.edges) if (!st.nodes.has(e.fromId) || !st.nodes.has(e.toId)) st.edges.delete(key);
}

// ---------------------------------------------------------------------------------------------
// Drawing

/** The edges of the current view: column edges only in column view; parallel edges merged. */
function shownEdges(st) {
  const shown = [];
  const seenPairs = new Set();
  for (const e of st.edges.values()) {
    if (!st.nodes.has(e.fromId) || !st.nodes.has(e.toId)) continue;
    if (isColumnEdge(e)) {
      if (st.params.columns) shown.push(e);
      continue;
    }
    const pair = `${e.fromId}\u0000${e.toId}`;
    if (seenPairs.has(pair)) continue;
    seenPairs.add(pair);
    shown.push(e);
  }
  return shown;
}

/** Tenant → colour index: the order of whoami's tenants, then any other tenant by name. */
function tenantColours(st) {
  const order = (st.ctx.me.tenants || []).map((t) => t.name);
  const others = [...new Set([...st.nodes.values()].map((n) => n.tenant))].filter((t) => !order.includes(t)).sort();
  return new Map([...order, ...others].map((t, i) => [t, i % PALETTE]));
}

/** Rebuilds the SVG from the model, keeping the pan/zoom and the keyboard focus. */
function draw(st, opts = {}) {
  const focusedId = document.activeElement?.closest?.("#lineage-svg g.node, #lineage-svg g.group")?.dataset.id;
  const edges = shownEdges(st);
  const colours = tenantColours(st);
  const pinned = new Set([st.startId, st.selected].filter(Boolean));
  st.layout = layoutGraph([...st.nodes.values()], edges.map((e) => ({ from: e.fromId, to: e.toId })),
    { openGroups: st.openGroups, pinned });
  st.elements = new Map();

  const edgeLayer = svg("g", { class: "edges" });
  const labelLayer = svg("g", { class: "edge-labels" });
  drawEdges(st, edges, edgeLayer, labelLayer);
  // Boxes in layer order, top to bottom: the Tab order follows the drawing.
  const nodeLayer = svg("g", { class: "nodes" });
  for (const item of st.layout.layers.flat()) {
    const g = item.type === "group" ? groupElement(st, item, colours) : nodeElement(st, item, colours);
    st.elements.set(item.id, g);
    nodeLayer.append(g);
  }
  replace(st.ui.viewport, edgeLayer, nodeLayer, labelLayer);
  applyTransform(st);
  drawLegend(st, colours);
  showPartial(st.ui.partial, st.partial, [...st.reasons.values()]);
  if (!opts.keepStatus) st.ui.status.textContent = statusText(st, edges);
  renderDetails(st);
  if (focusedId && st.elements.has(focusedId)) st.elements.get(focusedId).focus({ preventScroll: true });
}

function statusText(st, edges) {
  const groups = st.layout.items.filter((i) => i.type === "group");
  const grouped = groups.reduce((sum, g) => sum + g.members.length, 0);
  let text = `${st.nodes.size} nodes, ${edges.length} edges`;
  if (groups.length) text += ` (${grouped} nodes in ${groups.length} collapsed ${plural("group", groups.length)})`;
  if (st.params.asOf) text += ` as of ${toDatetimeLocal(st.params.asOf).replace("T", " ")}`;
  return text;
}

/** Cubic paths between item boxes; parallel column edges fan out and carry their labels. */
function drawEdges(st, edges, edgeLayer, labelLayer) {
  const byItems = new Map(); // "itemA→itemB" → edges drawn between those two boxes
  for (const e of edges) {
    const a = st.layout.itemOfNode.get(e.fromId);
    const b = st.layout.itemOfNode.get(e.toId);
    if (!a || !b || a === b) continue;
    const key = `${a.id}\u0000${b.id}`;
    const list = byItems.get(key) || byItems.set(key, []).get(key);
    // Between groups, plain edges collapse into one; column edges stay apart in column view.
    if (!isColumnEdge(e) && list.some((x) => !isColumnEdge(x.edge))) continue;
    list.push({ edge: e, a, b });
  }
  for (const list of byItems.values()) {
    list.forEach(({ edge, a, b }, k) => {
      const offset = (k - (list.length - 1) / 2) * 22;
      const column = isColumnEdge(edge);
      const [d, mid] = edgePath(a, b, offset);
      const path = svg("path", {
        class: column ? "edge column" : "edge", d, "data-from": a.id, "data-to": b.id,
        "data-kind": edge.kind || "", "marker-end": `url(#${column ? "lineage-arrow-column" : "lineage-arrow"})`,
      }, svg("title", {}, column ? `${edge.fromColumn} → ${edge.toColumn}` : edge.kind || "edge"));
      edgeLayer.append(path);
      if (column) {
        labelLayer.append(svg("text", { class: "edge-label", x: mid[0], y: mid[1] - 4, "text-anchor": "middle" },
          `${edge.fromColumn || "?"} → ${edge.toColumn || "?"}`));
      }
    });
  }
}

/** The path from box a's right side to box b's left side, and the curve's midpoint. */
function edgePath(a, b, offset) {
  const x1 = a.x + a.w;
  const y1 = a.y + a.h / 2;
  const x2 = b.x;
  const y2 = b.y + b.h / 2;
  const dx = Math.max(40, Math.abs(x2 - x1) / 2);
  const c1 = [x1 + dx, y1 + offset];
  const c2 = [x2 - dx, y2 + offset];
  // Midpoint of a cubic Bézier: (P0 + 3·P1 + 3·P2 + P3) / 8.
  const mid = [(x1 + 3 * c1[0] + 3 * c2[0] + x2) / 8, (y1 + 3 * c1[1] + 3 * c2[1] + y2) / 8];
  const r = (v) => Math.round(v * 10) / 10;
  return [`M${r(x1)},${r(y1)} C${r(c1[0])},${r(c1[1])} ${r(c2[0])},${r(c2[1])} ${r(x2)},${r(y2)}`, mid.map(r)];
}

function nodeElement(st, item, colours) {
  const node = st.nodes.get(item.nodeId);
  const classes = ["node", `tenant-c${colours.get(node.tenant) ?? 0}`];
  if (node.placeholder) classes.push("placeholder");
  if (st.expansions.has(node.id)) classes.push("expanded");
  if (node.id === st.startId) classes.push("start");
  if (node.id === st.selected) classes.push("selected");
  if (node.deleted) classes.push("deleted");
  const label = nodeLabel(node);
  const g = svg("g", {
    class: classes.join(" "), transform: `translate(${item.x},${item.y})`, tabindex: 0, role: "button",
    "data-id": node.id, "data-urn": node.placeholder ? "" : node.urn || "", "data-tenant": node.tenant || "",
    "data-kind": node.kind || "", "aria-label": label,
    "aria-expanded": node.placeholder ? null : String(st.expansions.has(node.id)),
  }, svg("title", {}, node.placeholder ? label : `${label}\n${node.urn || ""}`),
  focusRing(item), svg("rect", { class: "box", width: item.w, height: item.h, rx: 8, ry: 8 }));
  if (node.placeholder) {
    g.append(svg("text", { class: "kind", x: 10, y: 18 }, truncate(`hidden ${node.kind}`, 30)),
      svg("text", { class: "name", x: 10, y: 37 }, truncate(node.tenant || "", 26)));
  } else {
    const kindLine = `${node.kind} · ${node.tenant}${node.deleted ? " · deleted" : ""}`;
    g.append(svg("text", { class: "kind", x: 10, y: 18 }, truncate(kindLine, 30)),
      svg("text", { class: "name", x: 10, y: 37 }, truncate(label, 24)),
      svg("text", { class: "toggle", x: item.w - 10, y: 18, "text-anchor": "end", "aria-hidden": "true" },
        st.expansions.has(node.id) ? "−" : "+"));
  }
  return g;
}

/** A ring outside the box, shown only while it has the keyboard focus (see style.css). */
function focusRing(item) {
  return svg("rect", { class: "focus-ring", x: -5, y: -5, width: item.w + 10, height: item.h + 10, rx: 12, ry: 12 });
}

function groupElement(st, item, colours) {
  const tenants = [...new Set(item.members.map((id) => st.nodes.get(id).tenant))];
  const label = `${item.members.length} ${plural(item.kind, item.members.length)}`;
  const colour = tenants.length === 1 ? `tenant-c${colours.get(tenants[0]) ?? 0}` : "mixed";
  return svg("g", {
    class: `group ${colour}`, transform: `translate(${item.x},${item.y})`, tabindex: 0, role: "button",
    "data-id": item.id, "data-key": item.key, "data-count": item.members.length, "data-kind": item.kind,
    "aria-label": `${label}, collapsed group`, "aria-expanded": "false",
  }, svg("title", {}, `${label} in ${tenants.join(", ")} — click or Enter to show them`),
  focusRing(item),
  svg("rect", { class: "stack", x: 6, y: 6, width: item.w, height: item.h, rx: 8, ry: 8 }),
  svg("rect", { class: "box", width: item.w, height: item.h, rx: 8, ry: 8 }),
  svg("text", { class: "kind", x: 10, y: 18 }, truncate(tenants.join(", "), 30)),
  svg("text", { class: "name", x: 10, y: 37 }, label));
}

function drawLegend(st, colours) {
  const present = new Set([...st.nodes.values()].map((n) => n.tenant));
  const items = [...colours].filter(([t]) => present.has(t)).map(([tenant, c]) =>
    el("li", { class: "legend-item", "data-tenant": tenant },
      el("span", { class: `legend-swatch tenant-c${c}`, "aria-hidden": "true" }), tenant));
  items.push(el("li", { class: "legend-note" }, el("span", { class: "legend-swatch placeholder", "aria-hidden": "true" }), "hidden (not readable)"));
  if (st.params.columns) items.push(el("li", { class: "legend-note" }, el("span", { class: "legend-line column", "aria-hidden": "true" }), "column edge"));
  replace(st.ui.legend, el("h2", { class: "legend-title" }, "Tenants"), el("ul", {}, items));
}

// ---------------------------------------------------------------------------------------------
// Selection and the details panel

function select(st, id) {
  if (st.selected && st.elements.has(st.selected)) st.elements.get(st.selected).classList.remove("selected");
  st.selected = id;
  st.elements.get(id)?.classList.add("selected");
  renderDetails(st);
}

function renderDetails(st) {
  const node = st.selected && st.nodes.get(st.selected);
  if (!node) {
    replace(st.ui.details, el("p", { class: "muted" }, "Select a node to see its details."));
    return;
  }
  const row = (term, value) => [el("dt", {}, term), el("dd", {}, value)];
  const fields = el("dl", {},
    row("Kind", node.kind), row("Tenant", node.tenant),
    node.placeholder ? [] : row("URN", el("code", {}, node.urn || "")),
    node.status ? row("Status", node.status) : [],
    Number.isFinite(Number(node.depth)) ? row("Hops from start", String(node.depth)) : [],
    node.deleted ? row("Deleted", "yes") : []);
  const parts = [el("h2", {}, nodeLabel(node)), fields];
  if (node.placeholder) {
    parts.push(el("p", { class: "muted" }, "This node exists but you may not read it; it cannot be expanded."));
  } else {
    const toggle = el("button", { type: "button", class: "lineage-toggle" },
      st.expansions.has(node.id) ? "Hide the neighbours it added" : "Show its neighbours");
    toggle.addEventListener("click", () => toggleExpansion(st, node.id));
    parts.push(el("p", { class: "actions" },
      el("a", { id: "lineage-open-entity", href: entityHref(node.urn) }, "Open entity page"), " ",
      el("a", { href: lineageHref(node.urn, { direction: st.params.direction, depth: st.params.depth }) }, "Centre the lineage here"), " ",
      toggle));
  }
  const group = regroupButton(st, node);
  if (group) parts.push(group);
  if (st.params.columns) parts.push(columnList(st, node));
  replace(st.ui.details, parts);
}

/** For a node of a group the user opened: a button folding the group again. */
function regroupButton(st, node) {
  const item = st.layout && st.layout.itemOfNode.get(node.id);
  const key = item && `${item.rank}:${node.kind}`;
  if (!key || !st.openGroups.has(key)) return null;
  const button = el("button", { type: "button", class: "regroup" }, `Group the ${plural(node.kind, 2)} of this column again`);
  button.addEventListener("click", () => {
    st.openGroups.delete(key);
    st.selected = null;
    draw(st);
  });
  return el("p", {}, button);
}

/** The column edges into and out of `node`, as "node.column → node.column" lines. */
function columnList(st, node) {
  const lines = [];
  for (const e of st.edges.values()) {
    if (!isColumnEdge(e) || (e.fromId !== node.id && e.toId !== node.id)) continue;
    const from = st.nodes.get(e.fromId);
    const to = st.nodes.get(e.toId);
    if (!from || !to) continue;
    lines.push(el("li", { class: "column-edge" }, `${nodeLabel(from)}.${e.fromColumn || "?"} → ${nodeLabel(to)}.${e.toColumn || "?"}`));
  }
  return el("div", { class: "columns" }, el("h3", {}, "Column lineage"),
    lines.length ? el("ul", {}, lines) : el("p", { class: "muted" }, "No column edges shown for this node."));
}

// ---------------------------------------------------------------------------------------------
// Interaction: clicks, keys, pan and zoom

function bindCanvas(st) {
  const canvas = st.ui.svg;
  canvas.addEventListener("click", (ev) => {
    const target = ev.target.closest("g.node, g.group");
    if (target) activate(st, target);
  });
  canvas.addEventListener("keydown", (ev) => onKey(st, ev));
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const box = canvas.getBoundingClientRect();
    zoomBy(st, Math.exp(-ev.deltaY * 0.0015), ev.clientX - box.left, ev.clientY - box.top);
  }, { passive: false });
  canvas.addEventListener("focusin", (ev) => {
    const target = ev.target.closest?.("g.node, g.group");
    if (target) revealItem(st, target.dataset.id);
  });
  bindPan(st, canvas);
}

/** Dragging the background pans (nodes and groups keep their clicks). */
function bindPan(st, canvas) {
  let drag = null;
  canvas.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || ev.target.closest("g.node, g.group")) return;
    drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, tx: st.transform.x, ty: st.transform.y };
    canvas.setPointerCapture(ev.pointerId);
    canvas.classList.add("panning");
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    st.transform.x = drag.tx + ev.clientX - drag.x;
    st.transform.y = drag.ty + ev.clientY - drag.y;
    applyTransform(st);
  });
  const end = (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    drag = null;
    canvas.classList.remove("panning");
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

function activate(st, target) {
  const id = target.dataset.id;
  if (target.classList.contains("group")) {
    st.openGroups.add(target.dataset.key);
    const first = st.layout.items.find((i) => i.id === id)?.members[0];
    draw(st);
    if (first && st.elements.has(first)) st.elements.get(first).focus();
    return;
  }
  select(st, id);
  toggleExpansion(st, id);
}

function onKey(st, ev) {
  const target = ev.target.closest("g.node, g.group");
  if (target && (ev.key === "Enter" || ev.key === " ")) {
    ev.preventDefault();
    activate(st, target);
  } else if (target && ev.key.startsWith("Arrow")) {
    ev.preventDefault();
    moveFocus(st, target.dataset.id, ev.key);
  } else if (ev.key === "+" || ev.key === "=") {
    ev.preventDefault();
    zoomBy(st, 1.25);
  } else if (ev.key === "-" || ev.key === "_") {
    ev.preventDefault();
    zoomBy(st, 0.8);
  } else if (ev.key === "0") {
    ev.preventDefault();
    fit(st);
  }
}

/** Arrow keys: up/down within the column, left/right to the nearest box in the next column. */
function moveFocus(st, id, key) {
  const item = st.layout.items.find((i) => i.id === id);
  if (!item) return;
  const layers = st.layout.layers;
  let next = null;
  if (key === "ArrowUp" || key === "ArrowDown") {
    next = layers[item.rank][item.order + (key === "ArrowUp" ? -1 : 1)];
  } else {
    const step = key === "ArrowLeft" ? -1 : 1;
    for (let r = item.rank + step; r >= 0 && r < layers.length && !next; r += step) {
      let best = Infinity;
      for (const other of layers[r]) {
        const dy = Math.abs(other.y - item.y);
        if (dy < best) [best, next] = [dy, other];
      }
    }
  }
  if (next && st.elements.has(next.id)) st.elements.get(next.id).focus();
}

function applyTransform(st) {
  const { x, y, k } = st.transform;
  st.ui.viewport.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)}) scale(${k.toFixed(4)})`);
}

function canvasSize(st) {
  const box = st.ui.svg.getBoundingClientRect();
  return { w: box.width || 800, h: box.height || 500 };
}

/** Zooms by `factor` around the canvas point (cx, cy), the centre by default. */
function zoomBy(st, factor, cx, cy) {
  const { w, h } = canvasSize(st);
  const px = cx ?? w / 2;
  const py = cy ?? h / 2;
  const t = st.transform;
  const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, t.k * factor));
  t.x = px - ((px - t.x) * k) / t.k;
  t.y = py - ((py - t.y) * k) / t.k;
  t.k = k;
  applyTransform(st);
}

/** Scales and centres the whole drawing in the canvas. */
function fit(st) {
  if (!st.layout) return;
  const { w, h } = canvasSize(st);
  const margin = 24;
  const k = Math.min(1.25, Math.max(ZOOM_MIN, Math.min((w - 2 * margin) / st.layout.width, (h - 2 * margin) / st.layout.height)));
  st.transform = { k, x: (w - st.layout.width * k) / 2, y: (h - st.layout.height * k) / 2 };
  applyTransform(st);
}

/** Pans so that a focused box is inside the canvas (keyboard users may walk off-screen). */
function revealItem(st, id) {
  const item = st.layout && st.layout.items.find((i) => i.id === id);
  if (!item) return;
  const { w, h } = canvasSize(st);
  const t = st.transform;
  const left = t.x + item.x * t.k;
  const top = t.y + item.y * t.k;
  const right = left + item.w * t.k;
  const bottom = top + item.h * t.k;
  if (left >= 0 && top >= 0 && right <= w && bottom <= h) return;
  t.x = w / 2 - (item.x + item.w / 2) * t.k;
  t.y = h / 2 - (item.y + item.h / 2) * t.k;
  applyTransform(st);
}
