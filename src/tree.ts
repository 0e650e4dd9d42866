/**
 * @file Pytrees: nested plain objects and arrays whose leaves are tensors, numbers or anything
 * else that is not a container. Transforms flatten their arguments to leaves and rebuild results
 * with the same structure, so a gradient always has the shape of its argument.
 */

import { ShapeError } from "./errors.js";

/** The structure of a pytree without its leaves. */
export type TreeDef =
  | { readonly kind: "leaf" }
  | { readonly kind: "none"; readonly value: null | undefined }
  | { readonly kind: "array"; readonly children: readonly TreeDef[] }
  | { readonly kind: "object"; readonly keys: readonly string[]; readonly children: readonly TreeDef[] };

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * Split a pytree into its leaves (depth first, object keys in insertion order) and its structure.
 * `null`/`undefined` are empty subtrees, as JAX's None.
 * @example
 * const [leaves, def] = ad.tree.flatten({ a: 1, b: [2, 3] }); // leaves [1, 2, 3]
 */
export function flatten<L = unknown>(tree: unknown): [L[], TreeDef] {
  const leaves: L[] = [];
  const walk = (t: unknown): TreeDef => {
    if (t === null || t === undefined) return { kind: "none", value: t };
    if (Array.isArray(t)) return { kind: "array", children: t.map(walk) };
    if (isPlainObject(t)) {
      const keys = Object.keys(t);
      return { kind: "object", keys, children: keys.map((k) => walk(t[k])) };
    }
    leaves.push(t as L);
    return { kind: "leaf" };
  };
  return [leaves, walk(tree)];
}

/** Number of leaves a structure holds. */
export function numLeaves(def: TreeDef): number {
  switch (def.kind) {
    case "leaf":
      return 1;
    case "none":
      return 0;
    default:
      return def.children.reduce((n, c) => n + numLeaves(c), 0);
  }
}

/**
 * Rebuild a pytree from a structure and leaves (the inverse of `flatten`).
 * @example
 * const [leaves, def] = ad.tree.flatten({ a: 1, b: [2, 3] });
 * ad.tree.unflatten(def, leaves.map((x) => x * 10)); // { a: 10, b: [20, 30] }
 */
export function unflatten<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  if (numLeaves(def) !== leaves.length)
    throw new ShapeError(`tree.unflatten: the structure has ${numLeaves(def)} leaves, got ${leaves.length}`);
  let i = 0;
  const build = (d: TreeDef): unknown => {
    switch (d.kind) {
      case "leaf":
        return leaves[i++];
      case "none":
        return d.value;
      case "array":
        return d.children.map(build);
      case "object": {
        const o: Record<string, unknown> = {};
        d.keys.forEach((k, j) => {
          o[k] = build(d.children[j]!);
        });
        return o;
      }
    }
  };
  return build(def) as T;
}

/**
 * The leaves of a pytree, in `flatten` order.
 * @example
 * ad.tree.leaves([1, { x: 2 }]); // [1, 2]
 */
export function leaves<L = unknown>(tree: unknown): L[] {
  return flatten<L>(tree)[0];
}

/**
 * Apply `f` to every leaf (and to the matching leaves of further trees of the same structure).
 * @example
 * ad.tree.map((x) => x * 2, { a: 1, b: [2] }); // { a: 2, b: [4] }
 */
export function map<R = unknown>(f: (...leaves: never[]) => R, tree: unknown, ...rest: unknown[]): unknown {
  const [ls, def] = flatten(tree);
  const others = rest.map((r, j) => {
    const [l2, d2] = flatten(r);
    if (!treeDefEqual(def, d2))
      throw new ShapeError(
        `tree.map: tree ${j + 2} has structure ${showTreeDef(d2)}, expected ${showTreeDef(def)}`,
      );
    return l2;
  });
  return unflatten(
    def,
    ls.map((l, i) => (f as (...a: unknown[]) => R)(l, ...others.map((o) => o[i]))),
  );
}

/** Structural equality of two tree definitions. */
export function treeDefEqual(a: TreeDef, b: TreeDef): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "leaf") return true;
  if (a.kind === "none") return true;
  if (a.kind === "array" && b.kind === "array")
    return (
      a.children.length === b.children.length && a.children.every((c, i) => treeDefEqual(c, b.children[i]!))
    );
  if (a.kind === "object" && b.kind === "object")
    return (
      a.keys.length === b.keys.length &&
      a.keys.every((k, i) => b.keys[i] === k) &&
      a.children.every((c, i) => treeDefEqual(c, b.children[i]!))
    );
  return false;
}

/** A compact rendering of a structure (`{a: *, b: [*, *]}`) for error messages. */
export function showTreeDef(d: TreeDef): string {
  switch (d.kind) {
    case "leaf":
      return "*";
    case "none":
      return String(d.value);
    case "array":
      return `[${d.children.map(showTreeDef).join(", ")}]`;
    case "object":
      return `{${d.keys.map((k, i) => `${k}: ${showTreeDef(d.children[i]!)}`).join(", ")}}`;
  }
}
