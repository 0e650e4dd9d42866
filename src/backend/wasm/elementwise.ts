/**
 * @file Elementwise kernels emitted as WebAssembly SIMD, for float32 and float64: binary
 * arithmetic over a 2-D broadcast pattern (each operand walks rows with any stride and columns
 * contiguously or not at all, which covers same-shape, scalar, row-vector and column-vector
 * operands after dimension collapsing), comparisons, select, and the unary operations that have exact wasm
 * instructions. Results are bit-identical to the reference backend's JS loops: +, -, *, /, sqrt
 * are correctly rounded in both, and max/min follow its NaN and signed-zero rules exactly.
 */

import type { Code, ModuleBuilder, PlainOp, SimdOp } from "./emitter.js";

type Elem = "f32" | "f64";

/** Binary kernels with a wasm implementation. */
export const WASM_BINARY = ["add", "sub", "mul", "div", "max", "min"] as const;
/** One of `WASM_BINARY`. */
export type WasmBinary = (typeof WASM_BINARY)[number];

/** Unary kernels with an exact wasm instruction. */
export const WASM_UNARY = ["neg", "abs", "sqrt", "floor", "ceil", "round"] as const;
/** One of `WASM_UNARY`. */
export type WasmUnary = (typeof WASM_UNARY)[number];

const VEC: Record<
  Elem,
  { add: SimdOp; sub: SimdOp; mul: SimdOp; div: SimdOp; gt: SimdOp; lt: SimdOp; ne: SimdOp }
> = {
  f32: {
    add: "f32x4.add",
    sub: "f32x4.sub",
    mul: "f32x4.mul",
    div: "f32x4.div",
    gt: "f32x4.gt",
    lt: "f32x4.lt",
    ne: "f32x4.ne",
  },
  f64: {
    add: "f64x2.add",
    sub: "f64x2.sub",
    mul: "f64x2.mul",
    div: "f64x2.div",
    gt: "f64x2.gt",
    lt: "f64x2.lt",
    ne: "f64x2.ne",
  },
};

/** Apply `op` to two vectors held in locals `x`, `y`; leaves the result on the stack. */
function vecBinary(c: Code, t: Elem, op: WasmBinary, x: number, y: number): void {
  const v = VEC[t];
  switch (op) {
    case "add":
    case "sub":
    case "mul":
    case "div":
      c.get(x).get(y).simd(v[op]);
      return;
    case "max":
    case "min":
      // (x > y || x != x) ? x : y, lane by lane (the reference's NaN-propagating rule; ties keep y).
      c.get(x).get(y);
      c.get(x)
        .get(y)
        .simd(op === "max" ? v.gt : v.lt);
      c.get(x).get(x).simd(v.ne).simd("v128.or");
      c.simd("v128.bitselect");
      return;
  }
}

/** The scalar version of `vecBinary` (for row tails and strided operands). */
function scalarBinary(c: Code, t: Elem, op: WasmBinary, x: number, y: number): void {
  switch (op) {
    case "add":
    case "sub":
    case "mul":
    case "div":
      c.get(x).get(y).op(`${t}.${op}`);
      return;
    case "max":
    case "min":
      c.get(x).get(y);
      c.get(x)
        .get(y)
        .op(op === "max" ? `${t}.gt` : `${t}.lt`);
      c.get(x).get(x).op(`${t}.ne`).op("i32.or");
      c.op("select");
      return;
  }
}

/**
 * Set `mode` from two column strides: 3 when both operands are contiguous along a row, 2 when
 * only the first is (the second constant), 1 for the reverse, 0 otherwise (scalar code).
 */
function vectorMode(c: Code, aCol: number, bCol: number, mode: number): void {
  c.get(aCol).i32(1).op("i32.eq").get(bCol).i32(1).op("i32.eq").op("i32.and").i32(3).op("i32.mul");
  c.get(aCol).i32(1).op("i32.eq").get(bCol).op("i32.eqz").op("i32.and").i32(2).op("i32.mul");
  c.op("i32.add");
  c.get(aCol).op("i32.eqz").get(bCol).i32(1).op("i32.eq").op("i32.and");
  c.op("i32.add").set(mode);
}

/**
 * `bin_<op>_<t>(a, b, out, rows, cols, aRow, aCol, bRow, bCol)`: for each row r and column j,
 * out[r*cols + j] = a[r*aRow + j*aCol] op b[r*bRow + j*bCol] (strides in elements). Column
 * strides (1, 1), (1, 0) and (0, 1) run vectorised; any other pattern runs scalar.
 * @example
 * emitBinary(m, "f32", "add"); // exports bin_add_f32
 */
export function emitBinary(m: ModuleBuilder, t: Elem, op: WasmBinary): void {
  const es = t === "f32" ? 4 : 8;
  const L = 16 / es;
  const splat = t === "f32" ? "v128.load32_splat" : "v128.load64_splat";
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  m.func(`bin_${op}_${t}`, ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"], [], (c) => {
    const [a, b, out, rows, cols, aRow, aCol, bRow, bCol] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const r = c.local("i32");
    const j = c.local("i32");
    const pa = c.local("i32");
    const pb = c.local("i32");
    const po = c.local("i32");
    const vecEnd = c.local("i32");
    const mode = c.local("i32");
    const va = c.local("v128");
    const vb = c.local("v128");
    const sa = c.local(t);
    const sb = c.local(t);
    // mode: 3 = both contiguous, 2 = a contiguous and b constant per row, 1 = the reverse, 0 = scalar.
    c.get(aCol).i32(1).op("i32.eq").get(bCol).i32(1).op("i32.eq").op("i32.and").i32(3).op("i32.mul");
    c.get(aCol).i32(1).op("i32.eq").get(bCol).op("i32.eqz").op("i32.and").i32(2).op("i32.mul");
    c.op("i32.add");
    c.get(aCol).op("i32.eqz").get(bCol).i32(1).op("i32.eq").op("i32.and");
    c.op("i32.add").set(mode);
    c.get(cols).i32(-L).op("i32.and").set(vecEnd);
    c.get(out).set(po);
    c.i32(0).set(r);
    c.forLoop(
      r,
      () => c.get(rows),
      1,
      () => {
        c.get(a).get(r).get(aRow).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pa);
        c.get(b).get(r).get(bRow).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pb);
        c.i32(0).set(j);
        // Vectorised part of the row.
        const vecLoop = (aVec: boolean, bVec: boolean): void => {
          if (!aVec) c.get(pa).mem(splat).set(va);
          if (!bVec) c.get(pb).mem(splat).set(vb);
          c.forLoop(
            j,
            () => c.get(vecEnd),
            L,
            () => {
              if (aVec) c.get(pa).mem("v128.load").set(va);
              if (bVec) c.get(pb).mem("v128.load").set(vb);
              c.get(po);
              vecBinary(c, t, op, va, vb);
              c.mem("v128.store");
              if (aVec) c.get(pa).i32(16).op("i32.add").set(pa);
              if (bVec) c.get(pb).i32(16).op("i32.add").set(pb);
              c.get(po).i32(16).op("i32.add").set(po);
            },
          );
        };
        c.get(mode).i32(3).op("i32.eq").if();
        vecLoop(true, true);
        c.end();
        c.get(mode).i32(2).op("i32.eq").if();
        vecLoop(true, false);
        c.end();
        c.get(mode).i32(1).op("i32.eq").if();
        vecLoop(false, true);
        c.end();
        // Scalar rest of the row (all of it in mode 0).
        c.forLoop(
          j,
          () => c.get(cols),
          1,
          () => {
            c.get(pa).mem(load).set(sa);
            c.get(pb).mem(load).set(sb);
            c.get(po);
            scalarBinary(c, t, op, sa, sb);
            c.mem(store);
            c.get(pa).get(aCol).i32(es).op("i32.mul").op("i32.add").set(pa);
            c.get(pb).get(bCol).i32(es).op("i32.mul").op("i32.add").set(pb);
            c.get(po).i32(es).op("i32.add").set(po);
          },
        );
      },
    );
  });
}

const SCALAR_F32: Record<WasmUnary, PlainOp> = {
  neg: "f32.neg",
  abs: "f32.abs",
  sqrt: "f32.sqrt",
  floor: "f32.floor",
  ceil: "f32.ceil",
  round: "f32.nearest",
};
const SCALAR_F64: Record<WasmUnary, PlainOp> = {
  neg: "f64.neg",
  abs: "f64.abs",
  sqrt: "f64.sqrt",
  floor: "f64.floor",
  ceil: "f64.ceil",
  round: "f64.nearest",
};

/**
 * `un_<op>_<t>(x, out, n)`: out[i] = op(x[i]) for the exactly-rounded unary instructions.
 * @example
 * emitUnary(m, "f64", "sqrt"); // exports un_sqrt_f64
 */
export function emitUnary(m: ModuleBuilder, t: Elem, op: WasmUnary): void {
  const es = t === "f32" ? 4 : 8;
  const L = 16 / es;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  const vop: Record<WasmUnary, SimdOp> =
    t === "f32"
      ? {
          neg: "f32x4.neg",
          abs: "f32x4.abs",
          sqrt: "f32x4.sqrt",
          floor: "f32x4.floor",
          ceil: "f32x4.ceil",
          round: "f32x4.nearest",
        }
      : {
          neg: "f64x2.neg",
          abs: "f64x2.abs",
          sqrt: "f64x2.sqrt",
          floor: "f64x2.floor",
          ceil: "f64x2.ceil",
          round: "f64x2.nearest",
        };
  const sop: PlainOp = t === "f32" ? SCALAR_F32[op] : SCALAR_F64[op];
  m.func(`un_${op}_${t}`, ["i32", "i32", "i32"], [], (c) => {
    const [x, out, n] = [0, 1, 2];
    const i = c.local("i32");
    const vecEnd = c.local("i32");
    c.get(n).i32(-L).op("i32.and").set(vecEnd);
    c.i32(0).set(i);
    c.forLoop(
      i,
      () => c.get(vecEnd),
      L,
      () => {
        c.get(out).get(x).mem("v128.load").simd(vop[op]).mem("v128.store");
        c.get(x).i32(16).op("i32.add").set(x);
        c.get(out).i32(16).op("i32.add").set(out);
      },
    );
    c.forLoop(
      i,
      () => c.get(n),
      1,
      () => {
        c.get(out).get(x).mem(load).op(sop).mem(store);
        c.get(x).i32(es).op("i32.add").set(x);
        c.get(out).i32(es).op("i32.add").set(out);
      },
    );
  });
}

/** Comparison kernels (bool output, one byte per element). */
export const WASM_COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"] as const;
/** One of `WASM_COMPARE`. */
export type WasmCompare = (typeof WASM_COMPARE)[number];

/**
 * `cmp_<op>_<t>(a, b, out, rows, cols, aRow, aCol, bRow, bCol)`: out[r*cols + j] (a byte) =
 * a[r*aRow + j*aCol] op b[r*bRow + j*bCol], with IEEE semantics (NaN compares unequal), exactly
 * as the JS operators on the same values.
 * @example
 * emitCompare(m, "f32", "gt"); // exports cmp_gt_f32
 */
export function emitCompare(m: ModuleBuilder, t: Elem, op: WasmCompare): void {
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const cmp: PlainOp = `${t}.${op}`;
  m.func(`cmp_${op}_${t}`, ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"], [], (c) => {
    const [a, b, out, rows, cols, aRow, aCol, bRow, bCol] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const r = c.local("i32");
    const j = c.local("i32");
    const pa = c.local("i32");
    const pb = c.local("i32");
    const po = c.local("i32");
    const aColB = c.local("i32");
    const bColB = c.local("i32");
    const mode = c.local("i32");
    const vecEnd = c.local("i32");
    const va = c.local("v128");
    const vb = c.local("v128");
    c.get(aCol).i32(es).op("i32.mul").set(aColB);
    c.get(bCol).i32(es).op("i32.mul").set(bColB);
    vectorMode(c, aCol, bCol, mode);
    c.get(cols).i32(-16).op("i32.and").set(vecEnd);
    c.get(out).set(po);
    c.i32(0).set(r);
    c.forLoop(
      r,
      () => c.get(rows),
      1,
      () => {
        c.get(a).get(r).get(aRow).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pa);
        c.get(b).get(r).get(bRow).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pb);
        c.i32(0).set(j);
        if (t === "f32") {
          // 16 at a time where each operand is contiguous or constant along the row: four
          // lane masks narrowed to 16 bytes of 0 or 1.
          const vecLoop = (aVec: boolean, bVec: boolean): void => {
            if (!aVec) c.get(pa).mem("v128.load32_splat").set(va);
            if (!bVec) c.get(pb).mem("v128.load32_splat").set(vb);
            c.forLoop(
              j,
              () => c.get(vecEnd),
              16,
              () => {
                c.get(po);
                for (let q = 0; q < 4; q++) {
                  if (aVec) c.get(pa).mem("v128.load", 16 * q);
                  else c.get(va);
                  if (bVec) c.get(pb).mem("v128.load", 16 * q);
                  else c.get(vb);
                  c.simd(`f32x4.${op}`);
                  if (q % 2 === 1) c.simd("i16x8.narrow_i32x4_s");
                }
                c.simd("i8x16.narrow_i16x8_s").v128const(new Array<number>(16).fill(1)).simd("v128.and");
                c.mem("v128.store");
                if (aVec) c.get(pa).i32(64).op("i32.add").set(pa);
                if (bVec) c.get(pb).i32(64).op("i32.add").set(pb);
                c.get(po).i32(16).op("i32.add").set(po);
              },
            );
          };
          c.get(mode).i32(3).op("i32.eq").if();
          vecLoop(true, true);
          c.end();
          c.get(mode).i32(2).op("i32.eq").if();
          vecLoop(true, false);
          c.end();
          c.get(mode).i32(1).op("i32.eq").if();
          vecLoop(false, true);
          c.end();
        }
        c.forLoop(
          j,
          () => c.get(cols),
          1,
          () => {
            c.get(po).get(pa).mem(load).get(pb).mem(load).op(cmp).mem("i32.store8");
            c.get(pa).get(aColB).op("i32.add").set(pa);
            c.get(pb).get(bColB).op("i32.add").set(pb);
            c.get(po).i32(1).op("i32.add").set(po);
          },
        );
      },
    );
  });
}

/**
 * `sel_<es>(cond, a, b, out, rows, cols, cRow, cCol, aRow, aCol, bRow, bCol)`: out = cond ? a : b
 * elementwise for elements of `es` bytes (moved as integers: bit patterns are kept), `cond` one
 * byte per element, all operands walked with 2-D strides as in `bin_*`.
 * @example
 * emitSelect(m, 4); // exports sel_4 (float32, int32)
 */
export function emitSelect(m: ModuleBuilder, es: 1 | 4 | 8): void {
  const load = es === 1 ? "i32.load8_u" : es === 4 ? "i32.load" : "i64.load";
  const store = es === 1 ? "i32.store8" : es === 4 ? "i32.store" : "i64.store";
  const vt = es === 8 ? "i64" : "i32";
  m.func(
    `sel_${es}`,
    ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    [],
    (c) => {
      const [cnd, a, b, out, rows, cols, cRow, cCol, aRow, aCol, bRow, bCol] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
      ];
      const r = c.local("i32");
      const j = c.local("i32");
      const pc = c.local("i32");
      const pa = c.local("i32");
      const pb = c.local("i32");
      const po = c.local("i32");
      const aColB = c.local("i32");
      const bColB = c.local("i32");
      const va = c.local(vt);
      const mode = c.local("i32");
      const vecEnd = c.local("i32");
      const L = es === 1 ? 0 : 16 / es; // elements per vector (no vector code for bytes)
      const xa = c.local("v128");
      const xb = c.local("v128");
      c.get(aCol).i32(es).op("i32.mul").set(aColB);
      c.get(bCol).i32(es).op("i32.mul").set(bColB);
      vectorMode(c, aCol, bCol, mode);
      // Vector code needs a contiguous condition.
      c.get(mode).get(cCol).i32(1).op("i32.eq").op("i32.mul").set(mode);
      c.get(cols).i32(-Math.max(L, 1)).op("i32.and").set(vecEnd);
      c.get(out).set(po);
      c.i32(0).set(r);
      c.forLoop(
        r,
        () => c.get(rows),
        1,
        () => {
          c.get(cnd).get(r).get(cRow).op("i32.mul").op("i32.add").set(pc);
          c.get(a).get(r).get(aRow).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pa);
          c.get(b).get(r).get(bRow).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pb);
          c.i32(0).set(j);
          if (L > 0) {
            // L conditions widened to lane masks (a byte != 0 is true), then a bit select.
            const splat = es === 4 ? "v128.load32_splat" : "v128.load64_splat";
            const vecLoop = (aVec: boolean, bVec: boolean): void => {
              if (!aVec) c.get(pa).mem(splat).set(xa);
              if (!bVec) c.get(pb).mem(splat).set(xb);
              c.forLoop(
                j,
                () => c.get(vecEnd),
                L,
                () => {
                  c.get(po);
                  if (aVec) c.get(pa).mem("v128.load");
                  else c.get(xa);
                  if (bVec) c.get(pb).mem("v128.load");
                  else c.get(xb);
                  c.get(pc).mem(es === 4 ? "v128.load32_zero" : "v128.load16_splat");
                  c.simd("i16x8.extend_low_i8x16_u").simd("i32x4.extend_low_i16x8_u");
                  if (es === 8) c.simd("i64x2.extend_low_i32x4_u");
                  c.v128const().simd(es === 4 ? "i32x4.ne" : "i64x2.ne");
                  c.simd("v128.bitselect").mem("v128.store");
                  c.get(pc).i32(L).op("i32.add").set(pc);
                  if (aVec) c.get(pa).i32(16).op("i32.add").set(pa);
                  if (bVec) c.get(pb).i32(16).op("i32.add").set(pb);
                  c.get(po).i32(16).op("i32.add").set(po);
                },
              );
            };
            for (const [mv, av, bv] of [
              [3, true, true],
              [2, true, false],
              [1, false, true],
            ] as const) {
              c.get(mode).i32(mv).op("i32.eq").if();
              vecLoop(av, bv);
              c.end();
            }
          }
          c.forLoop(
            j,
            () => c.get(cols),
            1,
            () => {
              c.get(pa).mem(load).set(va);
              c.get(po).get(va).get(pb).mem(load).get(pc).mem("i32.load8_u").op("select").mem(store);
              c.get(pc).get(cCol).op("i32.add").set(pc);
              c.get(pa).get(aColB).op("i32.add").set(pa);
              c.get(pb).get(bColB).op("i32.add").set(pb);
              c.get(po).i32(es).op("i32.add").set(po);
            },
          );
        },
      );
    },
  );
}
