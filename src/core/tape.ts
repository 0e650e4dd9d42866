/**
 * @file The Wengert list and the one reverse engine. A `Node` records one primitive application
 * (its inputs, outputs and where each input came from). `backwardPass` orders the nodes
 * reachable from the seeds topologically and accumulates adjoints with `+=` in reverse order,
 * calling each primitive's VJP rule. The functional `vjp`/`grad` and the eager `backward()` share
 * it. Rules run at whatever interpreter is current, so the backward pass is itself differentiable.
 */

import { isFloat } from "../dtype.js";
import { add, astype, zeros } from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";
import { inBackward, isAnomalyEnabled, userSite } from "./anomaly-mode.js";
import type { Interpreter } from "./interpreter.js";
import type { Primitive, Tangent } from "./primitive.js";
import type { Tensor } from "./tensor.js";
import { isZero } from "./zero.js";

/** Where a value came from: output `index` of `node`. */
export interface Ref {
  readonly node: Node;
  readonly index: number;
}

/** A gradient hook: sees (and may replace) the gradient of one value. */
// biome-ignore lint/suspicious/noConfusingVoidType: a hook that only observes returns nothing (void)
export type GradHook = (grad: Tensor) => Tensor | undefined | void;

/**
 * The `needs` flags of nodes with up to four inputs, one shared array per pattern (rules only
 * read them): a long tape then holds no array per node for them.
 */
const NEEDS: boolean[][][] = [0, 1, 2, 3, 4].map((n) =>
  Array.from({ length: 1 << n }, (_, mask) => Array.from({ length: n }, (_, i) => (mask & (1 << i)) !== 0)),
);

function needsOf(parents: readonly (Ref | null)[]): boolean[] {
  const n = parents.length;
  if (n < NEEDS.length) {
    let mask = 0;
    for (let i = 0; i < n; i++) if (parents[i] !== null) mask |= 1 << i;
    return NEEDS[n]![mask]!;
  }
  return parents.map((p) => p !== null);
}

/**
 * One entry of the Wengert list. A leaf (an input being differentiated) has no primitive. A node
 * is also the `Ref` of its first output (`node` is itself, `index` 0), and under a reverse
 * interpreter the trace state of that output's tracer (`owner`, `primal`): one object per
 * recorded operation instead of three.
 */
export class Node implements Ref {
  /** Per input: does it want a cotangent (is it traced)? Computed once, read by every backward pass. */
  readonly needs: boolean[];
  // The four fields below default to values on the prototype (set after the class): only eager
  // autograd and anomaly detection assign them, so a node of a functional tape does not store them.
  /** Eager mode: versions of the saved inputs/outputs when recorded (-1 = not saved). */
  declare savedVersions: number[] | null;
  /** Eager mode: set once a backward pass has released this node's saved values. */
  declare freed: boolean;
  /** Eager mode: gradient hooks per output. */
  declare hooks: GradHook[][] | null;
  /** With anomaly detection on: the user's source line of the forward operation. */
  declare site: string | null;
  /**
   * @internal Scratch of the backward pass running over this node: the pass that owns it and the
   * cotangents accumulated so far for output 0 and for the others. Kept on the node rather than
   * in a map keyed by node, because a backward pass touches every node of a long tape.
   */
  _pass = 0;
  /** @internal See `_pass`. */
  _ct0: Tensor | undefined = undefined;
  /** @internal See `_pass`. */
  _ctRest: (Tensor | undefined)[] | null = null;
  /** @internal The reverse interpreter whose tracer of output 0 this node is (null otherwise). */
  owner: Interpreter | null = null;
  /** As the `Ref` of output 0: always 0 (kept on the prototype). */
  declare readonly index: number;
  constructor(
    readonly prim: Primitive<unknown> | null,
    readonly params: unknown,
    /** Primal inputs, one interpreter level down (emptied when an eager graph is freed). */
    public inputs: readonly Tensor[],
    /** Primal outputs, one interpreter level down (emptied when an eager graph is freed). */
    public outs: readonly Tensor[],
    /** Per input: the node that produced it, or null for a constant. */
    readonly parents: readonly (Ref | null)[],
  ) {
    this.needs = needsOf(parents);
    if (isAnomalyEnabled()) this.site = userSite();
  }

  /** As the `Ref` of output 0: the node itself. */
  get node(): Node {
    return this;
  }

  /** As a tracer's trace state: output 0's primal. */
  get primal(): Tensor {
    return this.outs[0]!;
  }

  /** A leaf node for a differentiated input. */
  static leaf(value: Tensor): Node {
    return new Node(null, null, [], [value], []);
  }

  /** Add a gradient hook on output `index`. */
  addHook(index: number, hook: GradHook): () => void {
    this.hooks ??= [];
    const list = (this.hooks[index] ??= []);
    list.push(hook);
    return () => {
      const k = list.indexOf(hook);
      if (k >= 0) list.splice(k, 1);
    };
  }

  /** Release the values saved for the backward pass (eager graphs, after `backward`). */
  free(): void {
    if (this.prim === null) return;
    this.freed = true;
    this.inputs = [];
    this.outs = [];
  }
}

Object.assign(Node.prototype, { savedVersions: null, freed: false, hooks: null, site: null, index: 0 });

/** Run the hooks registered on a value's gradient, in order; each may replace it. */
export function runHooks(hooks: readonly GradHook[] | undefined, g: Tensor): Tensor {
  if (hooks === undefined) return g;
  for (const h of hooks) {
    const r = h(g);
    if (r !== undefined) g = r;
  }
  return g;
}

/** Nodes reachable from `roots`, parents before children (iterative DFS, no recursion limit). */
export function topoSort(roots: readonly Node[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  const stack: [Node, number][] = [];
  for (const r of roots) {
    if (seen.has(r)) continue;
    seen.add(r);
    stack.push([r, 0]);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [node, i] = top;
      if (i < node.parents.length) {
        top[1] = i + 1;
        const p = node.parents[i];
        if (p && !seen.has(p.node)) {
          seen.add(p.node);
          stack.push([p.node, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }
  return order;
}

/** Adjoints of every node output, keyed by node. */
export type Adjoints = Map<Node, (Tensor | undefined)[]>;

let lastPass = 0;

/**
 * `a + b` for a leaf. Two sparse gradients (`ad.SparseTensor`, recognised by its `addSparse`, from
 * sparse embedding lookups) add up sparsely, so a table looked up twice in one graph still gets a
 * sparse gradient; anything else is the dense sum.
 */
function addLeafCotangents(a: Tensor, b: Tensor): Tensor {
  type MaybeSparse = Tensor & { addSparse?: (other: Tensor) => Tensor };
  const sa = a as MaybeSparse;
  if (typeof sa.addSparse === "function" && typeof (b as MaybeSparse).addSparse === "function")
    return sa.addSparse(b);
  return add(a, b);
}

/** Add `g` to the cotangent of `ref` in pass `pass`: on the node itself, or in `leaves` for a leaf. */
function accumulate(leaves: Adjoints, pass: number, ref: Ref, g: Tensor): void {
  const node = ref.node;
  if (node.prim === null) {
    let slot = leaves.get(node);
    if (slot === undefined) {
      slot = new Array(node.outs.length);
      leaves.set(node, slot);
    }
    const prev = slot[ref.index];
    slot[ref.index] = prev === undefined ? g : addLeafCotangents(prev, g);
    return;
  }
  if (node._pass !== pass) {
    node._pass = pass;
    node._ct0 = undefined;
    node._ctRest = null;
  }
  if (ref.index === 0) {
    const prev = node._ct0;
    node._ct0 = prev === undefined ? g : add(prev, g);
    return;
  }
  const rest = (node._ctRest ??= new Array(node.outs.length));
  const prev = rest[ref.index];
  rest[ref.index] = prev === undefined ? g : add(prev, g);
}

/** Options of a backward pass. */
export interface BackwardOptions {
  /** The nodes in topological order (a recorded Wengert list); otherwise sorted from the seeds. */
  order?: readonly Node[];
  /** Called on each node before its VJP runs (eager mode checks versions and freed graphs here). */
  before?: (node: Node) => void;
  /** Called with each node output's final cotangent before it propagates; may replace it. */
  onGrad?: (node: Node, index: number, g: Tensor) => Tensor;
}

/**
 * Propagate `seeds` (cotangents of some node outputs) back to every node they depend on, in
 * reverse topological order with `+=` accumulation. Returns the adjoints of leaf nodes.
 */
export function backwardPass(seeds: readonly [Ref, Tensor][], opts: BackwardOptions = {}): Adjoints {
  const leaves: Adjoints = new Map();
  const pass = ++lastPass;
  for (const [ref, g] of seeds) accumulate(leaves, pass, ref, g);
  const nodes = opts.order ?? topoSort(seeds.map(([r]) => r.node));
  const { before, onGrad } = opts;
  const anomaly = isAnomalyEnabled();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const prim = node.prim;
    if (prim === null || node._pass !== pass) continue;
    const ct0 = node._ct0;
    const rest = node._ctRest;
    // Adjoints of interior nodes are dropped as soon as they are used.
    node._ct0 = undefined;
    node._ctRest = null;
    node._pass = 0;
    if (ct0 === undefined && rest === null) continue;
    before?.(node);
    const outs = node.outs;
    let outCts: Tensor[];
    if (outs.length === 1 && rest === null) outCts = [ct0!];
    else {
      outCts = new Array(outs.length);
      for (let k = 0; k < outs.length; k++) {
        const c = k === 0 ? ct0 : (rest?.[k] ?? undefined);
        outCts[k] = c ?? zeros(outs[k]!.shape, { dtype: outs[k]!.dtype });
      }
    }
    if (onGrad !== undefined)
      for (let k = 0; k < outs.length; k++) {
        const c = k === 0 ? ct0 : rest?.[k];
        if (c !== undefined) outCts[k] = onGrad(node, k, c);
      }
    const inCts: Tangent[] = anomaly
      ? inBackward(prim.name, node.site, () =>
          prim.vjp(outCts, node.inputs as Tensor[], outs as Tensor[], node.params, node.needs),
        )
      : prim.vjp(outCts, node.inputs as Tensor[], outs as Tensor[], node.params, node.needs);
    const parents = node.parents;
    for (let j = 0; j < parents.length; j++) {
      const p = parents[j];
      const g = inCts[j];
      if (p === null || p === undefined || g === undefined || isZero(g)) continue;
      const x = node.inputs[j]!;
      if (!shapeEq(g.shape, x.shape))
        throw new Error(
          `adjoint internal error: the VJP of ${prim.name} gave a cotangent of shape ${fmtShape(g.shape)} for an input of shape ${fmtShape(x.shape)}`,
        );
      accumulate(leaves, pass, p, g.dtype === x.dtype ? g : astype(g, x.dtype));
    }
  }
  return leaves;
}

/** The autograd reference of a tensor that requires grad (a leaf gets its leaf node on first use). */
export function refOf(t: Tensor): Ref {
  return (t._ref ??= Node.leaf(t));
}

/**
 * Eager mode: record `prim` applied to concrete `args` (some of which require grad) on the tape,
 * giving its floating-point outputs a history. Called by the eval interpreter.
 */
export function recordEager(
  prim: Primitive<unknown>,
  params: unknown,
  args: readonly Tensor[],
  outs: readonly Tensor[],
): void {
  const parents = args.map((a) => (a._requiresGrad ? refOf(a) : null));
  const node = new Node(prim, params, args, outs, parents);
  const saves = prim.saves ?? "all";
  if (saves !== "none") {
    const ins = saves === "all" || saves === "inputs";
    const os = saves === "all" || saves === "outputs";
    node.savedVersions = [...args.map((a) => (ins ? a._version : -1)), ...outs.map(() => (os ? 0 : -1))];
  }
  for (let index = 0; index < outs.length; index++) {
    const o = outs[index]!;
    if (isFloat(o.dtype)) {
      o._requiresGrad = true;
      o._ref = index === 0 ? node : { node, index };
    }
  }
}
