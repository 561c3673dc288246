// metamesh web UI — layered DAG layout for the lineage explorer (pure: no DOM, runs under node).
//
// Sugiyama-style, kept simple and near-linear so graphs of thousands of nodes stay responsive:
//  1. break cycles: an iterative DFS marks back edges, which are ignored for ranks and ordering
//     (lineage is acyclic by construction, but merged partial answers must not hang the page);
//  2. rank = longest path from the sources (data flows left → right), in DFS topological order;
//  3. layers with more than `groupThreshold` nodes fold each kind (≥ 2 nodes of it) into one
//     collapsed group item unless its key "<rank>:<kind>" is in `openGroups`; `pinned` nodes
//     (the start node, the selection) never fold;
//  4. order within layers by barycenter sweeps (down then up, `sweeps` passes), each pass
//     O(E + n log n); long edges get no dummy nodes (a cheap approximation);
//  5. coordinates: columns by rank, rows centred on the middle of the tallest layer.

/**
 * @param {{id: string, kind: string}[]} nodes
 * @param {{from: string, to: string}[]} edges  edges naming unknown ids are ignored
 * @param {object} [options]
 * @returns {{items: object[], itemOfNode: Map<string, object>, layers: object[][], width: number, height: number}}
 *   items: {id, type: "node"|"group", nodeId?, kind, members: nodeId[], rank, order, x, y, w, h}
 */
export function layoutGraph(nodes, edges, options = {}) {
  const opt = {
    groupThreshold: 60, openGroups: new Set(), pinned: new Set(), sweeps: 4,
    nodeWidth: 190, nodeHeight: 48, columnGap: 110, rowGap: 18, ...options,
  };
  const n = nodes.length;
  const index = new Map(nodes.map((node, i) => [node.id, i]));
  const out = Array.from({ length: n }, () => []);
  const pairs = []; // [from, to] node indices of usable edges
  for (const e of edges) {
    const a = index.get(e.from);
    const b = index.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    out[a].push(pairs.length);
    pairs.push([a, b]);
  }
  const { back, preorder, topo } = depthFirst(n, out, pairs);
  const rank = longestPathRanks(n, out, pairs, back, topo);
  const { items, itemOf } = buildItems(nodes, rank, preorder, opt);
  const { itemIn, itemOut } = itemAdjacency(items.length, pairs, back, itemOf);
  const layers = orderLayers(items, itemIn, itemOut, opt.sweeps);
  const size = placeItems(layers, opt);
  const itemOfNode = new Map();
  nodes.forEach((node, i) => itemOfNode.set(node.id, items[itemOf[i]]));
  return { items, itemOfNode, layers, ...size };
}

/** Iterative DFS from the sources first: back edges, preorder numbers, a topological order. */
function depthFirst(n, out, pairs) {
  const indegree = new Array(n).fill(0);
  for (const [, b] of pairs) indegree[b]++;
  const roots = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) roots.push(i);
  for (let i = 0; i < n; i++) if (indegree[i] !== 0) roots.push(i); // nodes only on cycles

  const state = new Uint8Array(n); // 0 unseen, 1 on the stack, 2 done
  const back = new Uint8Array(pairs.length);
  const preorder = new Int32Array(n);
  const post = [];
  let counter = 0;
  for (const root of roots) {
    if (state[root]) continue;
    const stack = [[root, 0]]; // [node, next out-edge position]
    state[root] = 1;
    preorder[root] = counter++;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [u, k] = top;
      if (k < out[u].length) {
        top[1]++;
        const e = out[u][k];
        const v = pairs[e][1];
        if (state[v] === 1) back[e] = 1;
        else if (state[v] === 0) {
          state[v] = 1;
          preorder[v] = counter++;
          stack.push([v, 0]);
        }
      } else {
        state[u] = 2;
        post.push(u);
        stack.pop();
      }
    }
  }
  return { back, preorder, topo: post.reverse() };
}

/** Longest path from the sources over the forward edges, walking a topological order. */
function longestPathRanks(n, out, pairs, back, topo) {
  const rank = new Int32Array(n);
  for (const u of topo) {
    for (const e of out[u]) {
      if (back[e]) continue;
      const v = pairs[e][1];
      if (rank[v] < rank[u] + 1) rank[v] = rank[u] + 1;
    }
  }
  return rank;
}

/** Layout items: one per node, except kinds folded into groups in crowded layers. */
function buildItems(nodes, rank, preorder, opt) {
  const byRank = new Map();
  nodes.forEach((node, i) => {
    if (!byRank.has(rank[i])) byRank.set(rank[i], []);
    byRank.get(rank[i]).push(i);
  });
  const items = [];
  const itemOf = new Int32Array(nodes.length);
  for (const [r, members] of byRank) {
    const folded = new Map(); // kind → group item
    if (members.length > opt.groupThreshold) {
      const counts = new Map();
      for (const i of members) {
        if (!opt.pinned.has(nodes[i].id)) counts.set(nodes[i].kind, (counts.get(nodes[i].kind) || 0) + 1);
      }
      for (const [kind, count] of counts) {
        const key = `${r}:${kind}`;
        if (count >= 2 && !opt.openGroups.has(key)) {
          folded.set(kind, { id: `group:${key}`, type: "group", key, kind, rank: r, members: [], seed: Infinity });
        }
      }
    }
    for (const i of members) {
      const group = opt.pinned.has(nodes[i].id) ? undefined : folded.get(nodes[i].kind);
      if (group) {
        if (group.members.length === 0) {
          group.index = items.length;
          items.push(group);
        }
        group.members.push(nodes[i].id);
        group.seed = Math.min(group.seed, preorder[i]);
        itemOf[i] = group.index;
      } else {
        itemOf[i] = items.length;
        items.push({
          id: nodes[i].id, type: "node", nodeId: nodes[i].id, kind: nodes[i].kind, rank: r,
          members: [nodes[i].id], seed: preorder[i], index: items.length,
        });
      }
    }
  }
  return { items, itemOf };
}

/** Deduplicated item-level in/out neighbour lists over the forward edges. */
function itemAdjacency(count, pairs, back, itemOf) {
  const itemIn = Array.from({ length: count }, () => []);
  const itemOut = Array.from({ length: count }, () => []);
  const seen = new Set();
  pairs.forEach(([a, b], e) => {
    if (back[e]) return;
    const u = itemOf[a];
    const v = itemOf[b];
    if (u === v) return;
    const key = u * count + v;
    if (seen.has(key)) return;
    seen.add(key);
    itemOut[u].push(v);
    itemIn[v].push(u);
  });
  return { itemIn, itemOut };
}

/** Layers sorted by barycenter sweeps; sets `order` on every item. */
function orderLayers(items, itemIn, itemOut, sweeps) {
  const layers = [];
  for (const item of items) (layers[item.rank] ||= []).push(item);
  for (let r = 0; r < layers.length; r++) layers[r] ||= [];
  const pos = new Float64Array(items.length);
  const setPositions = (layer) => {
    const mid = (layer.length - 1) / 2;
    layer.forEach((item, k) => { pos[item.index] = k - mid; });
  };
  for (const layer of layers) {
    layer.sort((a, b) => a.seed - b.seed); // DFS order keeps connected nodes together to start
    setPositions(layer);
  }
  const sortLayer = (layer, neighbours) => {
    const key = new Map();
    for (const item of layer) {
      const list = neighbours[item.index];
      let sum = 0;
      for (const other of list) sum += pos[other];
      key.set(item, list.length ? sum / list.length : pos[item.index]);
    }
    layer.sort((a, b) => key.get(a) - key.get(b) || pos[a.index] - pos[b.index]);
    setPositions(layer);
  };
  for (let s = 0; s < sweeps; s++) {
    if (s % 2 === 0) for (let r = 1; r < layers.length; r++) sortLayer(layers[r], itemIn);
    else for (let r = layers.length - 2; r >= 0; r--) sortLayer(layers[r], itemOut);
  }
  for (const layer of layers) layer.forEach((item, k) => { item.order = k; });
  return layers;
}

/** Pixel coordinates (top-left of each box); returns the drawing's size. */
function placeItems(layers, opt) {
  const rowPitch = opt.nodeHeight + opt.rowGap;
  const tallest = layers.reduce((m, layer) => Math.max(m, layer.length), 1);
  for (const layer of layers) {
    const top = ((tallest - layer.length) * rowPitch) / 2;
    for (const item of layer) {
      item.w = opt.nodeWidth;
      item.h = opt.nodeHeight;
      item.x = item.rank * (opt.nodeWidth + opt.columnGap);
      item.y = top + item.order * rowPitch;
    }
  }
  return {
    width: Math.max(opt.nodeWidth, layers.length * (opt.nodeWidth + opt.columnGap) - opt.columnGap),
    height: Math.max(opt.nodeHeight, tallest * rowPitch - opt.rowGap),
  };
}
