/**
 * @file The computational graph as SVG: one box per node of the Wengert list (inputs on the
 * left, the output on the right) showing its operation, forward value, tangent and adjoint;
 * edges follow the data flow. `animateFlow` replays the order in which a mode computes its
 * derivatives: tangents left to right (forward), adjoints right to left (reverse).
 */

import { flowOrder, type Graph, type GraphNode, layoutGraph, NODE_H, NODE_W } from "./model.js";
import { fmt, svg } from "./svg.js";

export type Mode = "forward" | "reverse";

const PAD = 14;
/** Time between two steps of the animation, in ms. */
const STEP_MS = 520;

/** The formula shown in a node's header: the variable for inputs, else the operation. */
function headerText(n: GraphNode): string {
  if (n.kind === "input" || n.label !== null) return n.label ?? n.id;
  return n.expr.length > 20 ? `${n.expr.slice(0, 19)}…` : n.expr;
}

function nodeBox(n: GraphNode, x: number, y: number, mode: Mode, step: number): SVGGElement {
  const left = x - NODE_W / 2;
  const top = y - NODE_H / 2;
  const g = svg("g", {
    class: `node node-${n.kind}`,
    "data-id": n.id,
    "data-op": n.op,
    "data-step": step,
    transform: `translate(${left} ${top})`,
  });
  const title = svg("title", {}, `${n.id} = ${n.kind === "input" ? (n.label ?? n.id) : n.expr}`);
  g.append(
    title,
    svg("rect", { class: "node-glow", x: -4, y: -4, width: NODE_W + 8, height: NODE_H + 8, rx: 14 }),
    svg("rect", { class: "node-box", width: NODE_W, height: NODE_H, rx: 10 }),
    svg("path", {
      class: "node-head",
      d: `M0 10a10 10 0 0 1 10-10h${NODE_W - 20}a10 10 0 0 1 10 10v18h-${NODE_W}z`,
    }),
    svg("text", { class: "node-id", x: 10, y: 19 }, n.id),
    svg("text", { class: "node-op", x: NODE_W - 10, y: 19, "text-anchor": "end" }, headerText(n)),
  );
  const rows: [string, string, string, number][] = [
    ["value", "value", "v", n.value],
    ["tangent", "tangent", "v̇", n.tangent],
    ["adjoint", "adjoint", "v̄", n.adjoint],
  ];
  rows.forEach(([cls, label, sym, v], i) => {
    const ry = 46 + i * 19;
    const row = svg("g", { class: `row row-${cls}` });
    row.append(
      svg("text", { class: "row-sym", x: 12, y: ry }, sym),
      svg("text", { class: "row-label", x: 30, y: ry }, label),
      svg(
        "text",
        { class: "row-num", x: NODE_W - 10, y: ry, "text-anchor": "end", "data-value": v },
        fmt(v, 5),
      ),
    );
    g.append(row);
  });
  const badge = svg("g", { class: "step", transform: `translate(${NODE_W - 2} ${NODE_H - 2})` });
  badge.append(svg("circle", { r: 10 }), svg("text", { "text-anchor": "middle", y: 4 }, String(step + 1)));
  g.append(badge);
  g.classList.toggle("emph-tangent", mode === "forward");
  g.classList.toggle("emph-adjoint", mode === "reverse");
  return g;
}

/** A data-flow edge from the right side of one box to the left side of another. */
function edgePath(x1: number, y1: number, x2: number, y2: number): string {
  const a = x1 + NODE_W / 2;
  const b = x2 - NODE_W / 2;
  const mid = (a + b) / 2;
  return `M${a} ${y1} C${mid} ${y1}, ${mid} ${y2}, ${b - 6} ${y2}`;
}

/**
 * Draw `g` into `host` (replacing what was there), with step numbers for `mode`.
 * @example
 * renderGraph(document.querySelector("#graph")!, graph, "forward");
 */
export function renderGraph(host: HTMLElement, g: Graph, mode: Mode): SVGSVGElement {
  const { positions, width, height } = layoutGraph(g);
  const order = flowOrder(g, mode);
  const stepOf = new Map(order.map((id, i) => [id, i]));
  const root = svg("svg", {
    class: `graph mode-${mode}`,
    viewBox: `${-PAD} ${-PAD} ${width + 2 * PAD} ${height + 2 * PAD}`,
    role: "img",
    "aria-label": `Computational graph with ${g.nodes.length} nodes`,
    "data-nodes": g.nodes.length,
  });
  // Small graphs are drawn a little larger than their layout size; large ones shrink to fit, but
  // not below 80% (the host scrolls sideways instead), so the numbers stay readable.
  root.style.maxWidth = `${Math.round((width + 2 * PAD) * 1.2)}px`;
  root.style.minWidth = `${Math.round((width + 2 * PAD) * 0.8)}px`;
  const defs = svg("defs");
  for (const [id, cls] of [
    ["arrow", "arrow-head"],
    ["arrow-fwd", "arrow-head fwd"],
    ["arrow-rev", "arrow-head rev"],
  ] as const) {
    const marker = svg("marker", {
      id,
      viewBox: "0 0 10 10",
      refX: 4,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
    });
    marker.append(svg("path", { d: "M0 0L10 5L0 10z", class: cls }));
    defs.append(marker);
  }
  root.append(defs);
  const edges = svg("g", { class: "edges" });
  const pulses = svg("g", { class: "pulses" });
  for (const e of g.edges) {
    const p = positions.get(e.from)!;
    const q = positions.get(e.to)!;
    const d = edgePath(p.x, p.y, q.x, q.y);
    edges.append(
      svg("path", { class: "edge", d, "marker-end": "url(#arrow)", "data-from": e.from, "data-to": e.to }),
    );
    pulses.append(svg("path", { class: "pulse", d, "data-from": e.from, "data-to": e.to, pathLength: 100 }));
  }
  const nodes = svg("g", { class: "nodes" });
  for (const n of g.nodes) {
    const p = positions.get(n.id)!;
    nodes.append(nodeBox(n, p.x, p.y, mode, stepOf.get(n.id)!));
  }
  root.append(edges, pulses, nodes);
  host.replaceChildren(root);
  return root;
}

/**
 * Replay the order in which `mode` computes derivatives: each node lights up in turn and its
 * tangent (forward) or adjoint (reverse) appears; pulses run along the edges into the node
 * (forward) or out of it back to its operands (reverse). Resolves when the animation is over
 * (at once when the user prefers reduced motion); a newer call cancels an older one.
 * @example
 * await animateFlow(svgRoot, graph, "reverse");
 */
export async function animateFlow(root: SVGSVGElement, g: Graph, mode: Mode): Promise<void> {
  const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
  const order = flowOrder(g, mode);
  const cls = mode === "forward" ? "tangent" : "adjoint";
  const animations: Animation[] = [];
  const ease = "cubic-bezier(.2,.7,.2,1)";
  order.forEach((id, step) => {
    const node = root.querySelector<SVGGElement>(`.node[data-id="${id}"]`);
    if (node === null) return;
    const at = step * STEP_MS;
    const glow = node.querySelector(".node-glow")!;
    const num = node.querySelector(`.row-${cls}`)!;
    animations.push(
      glow.animate(
        [{ opacity: 0 }, { opacity: 1, offset: 0.25 }, { opacity: 0.55, offset: 0.7 }, { opacity: 0 }],
        { delay: at, duration: STEP_MS * 2.2, easing: "ease-out", fill: "both" },
      ),
      num.animate([{ opacity: 0.08 }, { opacity: 1 }], {
        delay: at + STEP_MS * 0.35,
        duration: STEP_MS * 0.6,
        easing: ease,
        fill: "backwards",
      }),
    );
    // Forward: data arrives along the edges into the node. Reverse: the node's adjoint is
    // complete here and is pushed back along its incoming edges to its operands.
    // A pulse is a short dash (CSS: stroke-dasharray 14 200 on a path of length 100) whose
    // offset runs from the operand's end to this node's end, or back.
    const [from, to] = mode === "forward" ? [14, -100] : [-100, 14];
    for (const pulse of root.querySelectorAll<SVGPathElement>(`.pulse[data-to="${id}"]`)) {
      pulse.classList.toggle("rev", mode === "reverse");
      animations.push(
        pulse.animate(
          [
            { strokeDashoffset: from, opacity: 1 },
            { strokeDashoffset: to, opacity: 1, offset: 0.85 },
            { strokeDashoffset: to, opacity: 0 },
          ],
          {
            delay: mode === "forward" ? Math.max(0, at - STEP_MS * 0.6) : at + STEP_MS * 0.4,
            duration: STEP_MS * 1.1,
            easing: ease,
          },
        ),
      );
    }
  });
  if (reduced) for (const a of animations) a.finish();
  await Promise.allSettled(animations.map((a) => a.finished));
}

/**
 * Stop any running animation in `root` (jumping to the final state).
 * @example
 * stopAnimations(svgRoot);
 */
export function stopAnimations(root: Element): void {
  for (const a of root.getAnimations({ subtree: true })) a.finish();
}
