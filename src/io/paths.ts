/**
 * @file Dotted paths of pytree leaves (`"layers.0.weight"`), shared by `ad.io` (safetensors names)
 * and `ad.nn` (state dicts, `functionalCall`). Objects contribute their keys, arrays their indices;
 * `unflattenPaths` rebuilds the nesting, turning objects keyed `0 … n−1` back into arrays.
 */

import { ShapeError } from "../errors.js";

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * The leaves of a pytree with their dotted paths, depth first (object keys in insertion order).
 * `null`/`undefined` subtrees are skipped. A leaf at the root has the path `""`.
 * @example
 * flattenWithPaths({ layers: [{ w: 1 }] }); // [["layers.0.w", 1]]
 */
export function flattenWithPaths(tree: unknown): [string, unknown][] {
  const out: [string, unknown][] = [];
  const walk = (t: unknown, path: string): void => {
    if (t === null || t === undefined) return;
    const join = (k: string) => (path === "" ? k : `${path}.${k}`);
    if (Array.isArray(t)) t.forEach((c, i) => walk(c, join(String(i))));
    else if (isPlainObject(t)) for (const k of Object.keys(t)) walk(t[k], join(k));
    else out.push([path, t]);
  };
  walk(tree, "");
  return out;
}

/** @internal Whether `tree` is a container (a plain object or an array) rather than a leaf. */
export function isContainer(tree: unknown): boolean {
  return Array.isArray(tree) || isPlainObject(tree);
}

/**
 * Rebuild the nesting of dotted paths: `{"a.0": x, "a.1": y, "b": z}` → `{a: [x, y], b: z}`.
 * An object whose keys are exactly `0 … n−1` becomes an array. A name that is both a leaf and a
 * prefix of another name throws `ShapeError` (or the error `conflict` makes).
 * @example
 * unflattenPaths([["a.0", 1], ["a.1", 2]]); // { a: [1, 2] }
 */
export function unflattenPaths(
  entries: readonly (readonly [string, unknown])[],
  conflict: (msg: string) => Error = (m) => new ShapeError(m),
): Record<string, unknown> | unknown[] {
  const root: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const nodes = new WeakSet<object>([root]);
  for (const [name, value] of entries) {
    const parts = name.split(".");
    let cur = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      let next = cur[p];
      if (next === undefined) {
        next = Object.create(null) as Record<string, unknown>;
        nodes.add(next as object);
        cur[p] = next;
      } else if (typeof next !== "object" || next === null || !nodes.has(next)) {
        throw conflict(
          `"${name}" needs "${parts.slice(0, i + 1).join(".")}" to be a group, but it is a tensor`,
        );
      }
      cur = next as Record<string, unknown>;
    }
    const last = parts[parts.length - 1]!;
    if (last in cur)
      throw conflict(
        nodes.has(cur[last] as object)
          ? `"${name}" is a tensor, but other names use it as a group`
          : `"${name}" appears twice`,
      );
    cur[last] = value;
  }
  const finish = (node: unknown): unknown => {
    if (typeof node !== "object" || node === null || !nodes.has(node)) return node;
    const o = node as Record<string, unknown>;
    const keys = Object.keys(o);
    const isArray = keys.length > 0 && keys.every((k, i) => k === String(i));
    if (isArray) return keys.map((k) => finish(o[k]));
    const res: Record<string, unknown> = {};
    // defineProperty: a name like "__proto__" stays an ordinary key.
    for (const k of keys)
      Object.defineProperty(res, k, {
        value: finish(o[k]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    return res;
  };
  return finish(root) as Record<string, unknown> | unknown[];
}
