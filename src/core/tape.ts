/**
 * @file The Wengert list and the one reverse engine. A `Node` records one primitive application
 * (its inputs, outputs and where each input came from). `backwardPass` orders the nodes
 * reachable from the seeds topologically and accumulates adjoints with `+=` in reverse order,
 * calling each primitive's VJP rule. The functional `vjp`/`grad` and the eager `backward()` share
 * it. Rules run at whatever interpreter is current, so the backward pass is itself differentiable.
 */

import { add, astype, zeros } from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";
import type { Primitive, Tangent } from "./primitive.js";
import type { Tensor } from "./tensor.js";
import { isZero } from "./zero.js";

/** Where a value came from: output `index` of `node`. */
export interface Ref {
  readonly node: Node;
  readonly index: number;
}

/** One entry of the Wengert list. A leaf (an input being differentiated) has no primitive. */
export class Node {
  /** Per input: does it want a cotangent (is it traced)? Computed once, read by every backward pass. */
  readonly needs: boolean[];
  constructor(
    readonly prim: Primitive<unknown> | null,
    readonly params: unknown,
    /** Primal inputs, one interpreter level down. */
    readonly inputs: readonly Tensor[],
    /** Primal outputs, one interpreter level down. */
    readonly outs: readonly Tensor[],
    /** Per input: the node that produced it, or null for a constant. */
    readonly parents: readonly (Ref | null)[],
  ) {
    this.needs = parents.map((p) => p !== null);
  }

  /** A leaf node for a differentiated input. */
  static leaf(value: Tensor): Node {
    return new Node(null, null, [], [value], []);
  }
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

function accumulate(cts: Adjoints, ref: Ref, g: Tensor): void {
  let slot = cts.get(ref.node);
  if (slot === undefined) {
    slot = new Array(ref.node.outs.length);
    cts.set(ref.node, slot);
  }
  const prev = slot[ref.index];
  slot[ref.index] = prev === undefined ? g : add(prev, g);
}

/**
 * Propagate `seeds` (cotangents of some node outputs) back to every node they depend on.
 * `order` may give the nodes already in topological order (a recorded Wengert list); otherwise
 * they are sorted from the seeds. Returns the adjoints of leaf nodes.
 */
export function backwardPass(seeds: readonly [Ref, Tensor][], order?: readonly Node[]): Adjoints {
  const cts: Adjoints = new Map();
  for (const [ref, g] of seeds) accumulate(cts, ref, g);
  const nodes = order ?? topoSort(seeds.map(([r]) => r.node));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const prim = node.prim;
    if (prim === null) continue;
    const slot = cts.get(node);
    if (slot === undefined) continue;
    cts.delete(node); // adjoints of interior nodes are dropped as soon as they are used
    const outs = node.outs;
    const outCts =
      outs.length === 1
        ? (slot as Tensor[])
        : outs.map((o, k) => slot[k] ?? zeros(o.shape, { dtype: o.dtype }));
    const inCts: Tangent[] = prim.vjp(
      outCts,
      node.inputs as Tensor[],
      outs as Tensor[],
      node.params,
      node.needs,
    );
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
      accumulate(cts, p, g.dtype === x.dtype ? g : astype(g, x.dtype));
    }
  }
  return cts;
}
