/**
 * @file Scalar forward mode with dual numbers `a + bε`, nestable to any order without
 * perturbation confusion (Siskind & Pearlmutter): every `derivative` call owns a fresh tag, and a
 * Dual's parts are numbers or Duals of lower tags, so the highest tag is always the innermost
 * perturbation. Standalone: it shares no code with the tensor engine.
 */

import { TransformError } from "./errors.js";

/** A plain number or a dual number: what every function here accepts. */
export type DualLike = number | Dual;
type Num = DualLike;

/** A unary function on dual numbers: a number in gives a number out, a Dual in gives a Dual out. */
export interface DualUnary {
  (x: number): number;
  (x: Dual): Dual;
  (x: Num): Num;
}

/** A binary function on dual numbers: two numbers give a number, any Dual operand gives a Dual. */
export interface DualBinary {
  (a: number, b: number): number;
  (a: Dual, b: Num): Dual;
  (a: Num, b: Dual): Dual;
  (a: Num, b: Num): Num;
}

/**
 * A dual number `re + eps·ε` with `ε² = 0`; `tag` names the perturbation `ε` belongs to.
 * `re` and `eps` may themselves be Duals of lower tags (that is how nested derivatives are held).
 * Methods never mutate; they return new Duals. Tags below 2²⁰ are free for hand-built Duals
 * (`derivative` numbers its own from 2²⁰ upward), so hand-built ones are always outer perturbations.
 * @example
 * const x = new Dual(2, 1);               // x = 2, dx = 1
 * const y = x.mul(x).add(Dual.sin(x));    // y = x² + sin x
 * y.re;  // 4 + sin 2
 * y.eps; // 2·2 + cos 2
 */
export class Dual {
  re: Num;
  eps: Num;
  readonly tag: number;

  constructor(re: Num, eps: Num = 0, tag = 0) {
    // The whole scheme rests on this invariant: inner parts carry strictly lower tags.
    if ((typeof re !== "number" && re.tag >= tag) || (typeof eps !== "number" && eps.tag >= tag)) {
      throw new TransformError(
        `Dual: the parts of a Dual with tag ${tag} must be numbers or Duals of lower tags; ` +
          "nest with derivative() or give the outer Dual a higher tag",
      );
    }
    this.re = re;
    this.eps = eps;
    this.tag = tag;
  }

  /** `(a + a'ε) + (b + b'ε) = (a + b) + (a' + b')ε`. @example new Dual(1, 1).add(2).eps; // 1 */
  add(b: Num): Dual {
    return Dual.add(this, b);
  }
  /** `(a + a'ε) − (b + b'ε) = (a − b) + (a' − b')ε`. @example new Dual(1, 1).sub(2).re; // -1 */
  sub(b: Num): Dual {
    return Dual.sub(this, b);
  }
  /** `(a + a'ε)(b + b'ε) = ab + (a'b + ab')ε`. @example new Dual(3, 1).mul(new Dual(3, 1)).eps; // 6 */
  mul(b: Num): Dual {
    return Dual.mul(this, b);
  }
  /** `(a + a'ε)/(b + b'ε) = a/b + (a' − (a/b)b')/b ε`. @example new Dual(1, 1).div(2).eps; // 0.5 */
  div(b: Num): Dual {
    return Dual.div(this, b);
  }
  /** `d(aᵇ) = b·aᵇ⁻¹ da + aᵇ·log a db`, finite at a = 0. @example new Dual(0, 1).pow(2).eps; // 0 */
  pow(b: Num): Dual {
    return Dual.pow(this, b);
  }
  /** `−(a + a'ε) = −a − a'ε`. @example new Dual(1, 2).neg().eps; // -2 */
  neg(): Dual {
    return Dual.neg(this);
  }

  /** `a + bε`, with the tag shown as `ε_t` when it is not 0. @example `${new Dual(1, 2)}`; // "1 + 2ε" */
  toString(): string {
    const part = (v: Num): string => (typeof v === "number" ? String(v) : `(${v.toString()})`);
    const e = this.tag === 0 ? "ε" : `ε_${this.tag}`;
    if (typeof this.eps === "number" && this.eps < 0) return `${part(this.re)} - ${-this.eps}${e}`;
    return `${part(this.re)} + ${part(this.eps)}${e}`;
  }

  /** The plain number at the bottom of `x` (its value with every perturbation dropped). @example Dual.value(new Dual(2, 1)); // 2 */
  static value(x: Num): number {
    while (typeof x !== "number") x = x.re;
    return x;
  }

  /** d(a + b) = da + db. @example Dual.add(new Dual(1, 1), 2).eps; // 1 */
  static readonly add = binaryOp(
    (a, b) => a + b,
    (_a, _b, da, db) => tadd(da, db),
  );
  /** d(a − b) = da − db. @example Dual.sub(new Dual(1, 1), 1).eps; // 1 */
  static readonly sub = binaryOp(
    (a, b) => a - b,
    (_a, _b, da, db) => tadd(da, tneg(db)),
  );
  /** d(ab) = b·da + a·db. @example Dual.mul(new Dual(3, 1), 2).eps; // 2 */
  static readonly mul = binaryOp(
    (a, b) => a * b,
    (a, b, da, db) => tadd(tmul(b, da), tmul(a, db)),
  );
  /** d(a/b) = (da − (a/b)·db)/b. @example Dual.div(1, new Dual(2, 1)).eps; // -0.25 */
  static readonly div = binaryOp(
    (a, b) => a / b,
    (_a, b, da, db, y) => tdiv(tadd(da, tneg(tmul(y, db))), b),
  );
  /**
   * d(aᵇ) = b·aᵇ⁻¹·da + aᵇ·log a·db, where the first term is 0 at b = 0 and the second at a = 0
   * (JAX's convention), so `x²` at 0 has derivative 0 and `0ʸ` never meets log 0.
   * @example Dual.pow(new Dual(0, 1), 2).eps; // 0
   */
  static readonly pow = binaryOp(
    (a, b) => a ** b,
    (a, b, da, db, y) =>
      tadd(
        da === 0 || Dual.value(b) === 0 ? 0 : mul(mul(b, Dual.pow(a, sub(b, 1))), da),
        db === 0 || Dual.value(a) === 0 ? 0 : mul(mul(y, Dual.log(a)), db),
      ),
  );
  /** The larger operand; a tie splits the derivative equally. @example Dual.max(new Dual(1, 1), 1).eps; // 0.5 */
  static readonly max = extremum(1);
  /** The smaller operand; a tie splits the derivative equally. @example Dual.min(new Dual(1, 1), 2).eps; // 1 */
  static readonly min = extremum(-1);

  /** `−x`. @example Dual.neg(new Dual(1, 1)).eps; // -1 */
  static readonly neg = unaryOp(
    (x) => -x,
    () => -1,
  );
  /** sin' = cos. @example Dual.sin(new Dual(0, 1)).eps; // 1 */
  static readonly sin = unaryOp(Math.sin, (x) => Dual.cos(x));
  /** cos' = −sin. @example Dual.cos(new Dual(0, 1)).eps; // -0 */
  static readonly cos = unaryOp(Math.cos, (x) => Dual.neg(Dual.sin(x)));
  /** tan' = 1 + tan². @example Dual.tan(new Dual(0, 1)).eps; // 1 */
  static readonly tan = unaryOp(Math.tan, (_, y) => add(1, mul(y, y)));
  /** exp' = exp. @example Dual.exp(new Dual(0, 1)).eps; // 1 */
  static readonly exp = unaryOp(Math.exp, (_, y) => y);
  /** log' = 1/x. @example Dual.log(new Dual(2, 1)).eps; // 0.5 */
  static readonly log = unaryOp(Math.log, (x) => div(1, x));
  /** sqrt' = 1/(2√x), infinite at 0 as IEEE says. @example Dual.sqrt(new Dual(4, 1)).eps; // 0.25 */
  static readonly sqrt = unaryOp(Math.sqrt, (_, y) => div(0.5, y));
  /** tanh' = 1 − tanh². @example Dual.tanh(new Dual(0, 1)).eps; // 1 */
  static readonly tanh = unaryOp(Math.tanh, (_, y) => sub(1, mul(y, y)));
  /** σ' = σ(1 − σ). @example Dual.sigmoid(new Dual(0, 1)).eps; // 0.25 */
  static readonly sigmoid = unaryOp(sigmoid, (_, y) => mul(y, sub(1, y)));
  /** asin' = 1/√(1 − x²). @example Dual.asin(new Dual(0, 1)).eps; // 1 */
  static readonly asin = unaryOp(Math.asin, (x) => div(1, Dual.sqrt(sub(1, mul(x, x)))));
  /** acos' = −1/√(1 − x²). @example Dual.acos(new Dual(0, 1)).eps; // -1 */
  static readonly acos = unaryOp(Math.acos, (x) => div(-1, Dual.sqrt(sub(1, mul(x, x)))));
  /** atan' = 1/(1 + x²). @example Dual.atan(new Dual(1, 1)).eps; // 0.5 */
  static readonly atan = unaryOp(Math.atan, (x) => div(1, add(1, mul(x, x))));
  /** sinh' = cosh. @example Dual.sinh(new Dual(0, 1)).eps; // 1 */
  static readonly sinh = unaryOp(Math.sinh, (x) => Dual.cosh(x));
  /** cosh' = sinh. @example Dual.cosh(new Dual(0, 1)).eps; // 0 */
  static readonly cosh = unaryOp(Math.cosh, (x) => Dual.sinh(x));
  /** abs' = sign, with abs'(0) = 0 (as PyTorch and JAX). @example Dual.abs(new Dual(0, 1)).eps; // 0 */
  static readonly abs = unaryOp(Math.abs, (x) => {
    const v = Dual.value(x);
    return v > 0 ? 1 : v < 0 ? -1 : 0;
  });
  /** log1p' = 1/(1 + x). @example Dual.log1p(new Dual(0, 1)).eps; // 1 */
  static readonly log1p = unaryOp(Math.log1p, (x) => div(1, add(1, x)));
  /** expm1' = exp = expm1 + 1. @example Dual.expm1(new Dual(0, 1)).eps; // 1 */
  static readonly expm1 = unaryOp(Math.expm1, (_, y) => add(y, 1));
  /** erf' = 2/√π · exp(−x²). @example Dual.erf(new Dual(0, 1)).eps; // 1.1283791670955126 */
  static readonly erf = unaryOp(erf, (x) => mul(2 / Math.sqrt(Math.PI), Dual.exp(Dual.neg(mul(x, x)))));
}

/**
 * `f'(x)` for a scalar `f` written with Dual operations. Each call seeds `x + 1·ε_t` with a fresh
 * tag `t` and reads the `ε_t` part of the result, so calls nest freely: `derivative(derivative(f))`
 * is `f''`, and a derivative taken inside another never mixes their perturbations.
 * @example
 * derivative((x) => x.mul(x))(3);                            // 6
 * derivative(derivative((x) => Dual.sin(x)))(0.5);           // -Math.sin(0.5)
 * derivative((x) => x.mul(derivative((y) => x.add(y))(1)))(1); // 1, not 2
 */
export function derivative(f: (x: Dual) => ClosureResult): (x: Num) => ClosureResult;
export function derivative(f: (x: Dual) => Num): (x: Num) => Num;
export function derivative(f: (x: Dual) => Num | ClosureResult): (x: Num) => Num | ClosureResult {
  checkFunction("derivative", f);
  return (x: Num) => {
    const t = freshTag("derivative", x);
    return tangentOf(f(new Dual(x, 1, t)), t);
  };
}

/** A function-valued result (`x => y => ...`): its derivative is again a function. */
export type ClosureResult = (y: Num) => Num | ClosureResult;

// The ε_t part of a result. A returned closure is differentiated lazily: calling it later (even
// inside another derivative, whose newer tag outranks t) reads the ε_t part of what it returns,
// so the two perturbations stay apart (Manzyuk et al., "Confusion of tagged perturbations").
function tangentOf(r: unknown, t: number): Num | ClosureResult {
  if (typeof r === "function") return (y: Num) => tangentOf((r as ClosureResult)(y), t);
  return epsAt(checkResult("derivative", r), t);
}

/**
 * The `n`-th derivative of a scalar `f` (`n = 0` gives `f` itself), by nesting `derivative`.
 * @example
 * nthDerivative((x) => Dual.exp(x.mul(2)), 3)(0); // 8
 * nthDerivative((x) => x.pow(3), 3)(5);            // 6
 */
export function nthDerivative(f: (x: Dual) => Num, n: number): (x: Num) => Num {
  checkFunction("nthDerivative", f);
  if (!Number.isInteger(n) || n < 0) {
    throw new TransformError(`nthDerivative: the order must be a non-negative integer, got ${String(n)}`);
  }
  if (n === 0) {
    // Run f on a Dual that carries no perturbation, then read off its value at that tag.
    return (x: Num): Num => {
      const t = freshTag("nthDerivative", x);
      return reAt(checkResult("nthDerivative", f(new Dual(x, 0, t))), t);
    };
  }
  let g: (x: Num) => Num = derivative(f);
  for (let i = 1; i < n; i++) g = derivative(g);
  return g;
}

// Tags of derivative() calls: strictly increasing, so an inner call always outranks an outer one.
// They start above the tags people pick by hand, so a hand-built Dual is always an outer perturbation.
let nextTag = 2 ** 20;

function freshTag(name: string, x: unknown): number {
  if (!(x instanceof Dual) && !(typeof x === "number" && Number.isFinite(x))) {
    throw new TransformError(`${name}: the point must be a finite number or a Dual, got ${describe(x)}`);
  }
  return nextTag++;
}

function checkFunction(name: string, f: unknown): void {
  if (typeof f !== "function") {
    throw new TransformError(`${name}: expected a function of a Dual, got ${describe(f)}`);
  }
}

function checkResult(name: string, y: unknown): Num {
  if (typeof y === "number" || y instanceof Dual) return y;
  throw new TransformError(
    `${name}: the function must return a number, a Dual or a function, got ${describe(y)}`,
  );
}

function describe(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (v === null) return "null";
  if (typeof v === "object") return v.constructor?.name ?? "object";
  return typeof v;
}

// A value's tag, with numbers below every Dual.
function tagOf(x: Num): number {
  return typeof x === "number" ? -1 : x.tag;
}

function topTag(a: Num, b: Num): number {
  return Math.max(tagOf(a), tagOf(b));
}

// The part of x not perturbed by ε_t: x itself when x does not carry tag t.
function reAt(x: Num, t: number): Num {
  if (typeof x === "number" || x.tag < t) return x;
  if (x.tag === t) return x.re;
  // A higher tag escaped its own derivative call (e.g. in a returned closure): recurse under it.
  return new Dual(reAt(x.re, t), reAt(x.eps, t), x.tag);
}

// The ε_t coefficient of x: 0 when x does not carry tag t.
function epsAt(x: Num, t: number): Num {
  if (typeof x === "number" || x.tag < t) return 0;
  if (x.tag === t) return x.eps;
  return new Dual(epsAt(x.re, t), epsAt(x.eps, t), x.tag);
}

// Short names for the rules below; each op takes the plain-number path before anything else.
const { add, sub, mul, div } = Dual;

// Tangent arithmetic where a literal 0 is a symbolic zero: it stays 0 even against ∞ or NaN factors.
function tadd(a: Num, b: Num): Num {
  return a === 0 ? b : b === 0 ? a : add(a, b);
}
function tneg(a: Num): Num {
  return a === 0 ? 0 : typeof a === "number" ? -a : Dual.neg(a);
}
function tmul(d: Num, g: Num): Num {
  return g === 0 ? 0 : mul(d, g);
}
function tdiv(g: Num, d: Num): Num {
  return g === 0 ? 0 : div(g, d);
}

// Lifts f with derivative df(x, f(x)) (written with Dual ops, so it differentiates again).
function unaryOp(f: (x: number) => number, df: (x: Num, y: Num) => Num): DualUnary {
  const op = (x: Num): Num => {
    if (typeof x === "number") return f(x);
    const y = op(x.re);
    return new Dual(y, tmul(df(x.re, y), x.eps), x.tag);
  };
  return op as DualUnary; // a Dual in always builds a Dual out, which the overloads promise
}

// Lifts a binary op: at the top tag t, y = a ∘ b on the ε_t-free parts and dy = rule(a, b, da, db, y).
function binaryOp(
  f: (a: number, b: number) => number,
  rule: (a: Num, b: Num, da: Num, db: Num, y: Num) => Num,
): DualBinary {
  const op = (a: Num, b: Num): Num => {
    if (typeof a === "number" && typeof b === "number") return f(a, b);
    // The lower-tagged operand is a constant at the higher tag's level: its ε_t part is 0.
    const t = topTag(a, b);
    const ar = reAt(a, t);
    const br = reAt(b, t);
    const y = op(ar, br);
    return new Dual(y, rule(ar, br, epsAt(a, t), epsAt(b, t), y), t);
  };
  return op as DualBinary; // an operand that is a Dual always builds a Dual, as the overloads promise
}

// max (sign 1) or min (sign −1): the winner whole; at a tie, the mean of both tangents, tag by tag.
function extremum(sign: number): DualBinary {
  const op = (a: Num, b: Num): Num => {
    if (typeof a === "number" && typeof b === "number") return sign > 0 ? Math.max(a, b) : Math.min(a, b);
    const va = Dual.value(a);
    const vb = Dual.value(b);
    const d = sign * (va - vb);
    // NaN wins, as in Math.max; a number winner against a Dual is a constant at the Dual's tag.
    const w = Number.isNaN(va) ? a : Number.isNaN(vb) ? b : d > 0 ? a : d < 0 ? b : tie(a, b);
    return typeof w === "number" ? new Dual(w, 0, topTag(a, b)) : w;
  };
  return op as DualBinary;
}

function tie(a: Num, b: Num): Num {
  if (typeof a === "number" && typeof b === "number") return a;
  const t = topTag(a, b);
  const e = tadd(epsAt(a, t), epsAt(b, t));
  return new Dual(tie(reAt(a, t), reAt(b, t)), e === 0 ? 0 : mul(0.5, e), t);
}

// σ(x) without overflow: exp only ever sees −|x|.
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

// erf to about 1e−15 relative. Below 2, the series 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3···(2n+1)), whose
// terms are all positive (no cancellation); from 2, 1 − erfc by Laplace's continued fraction
// erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))), which converges fast there;
// from 6, ±1 (erfc(6) ≈ 2e−17 is below half an ulp of 1).
function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let r: number;
  if (ax < 2) {
    const x2 = ax * ax;
    let term = ax;
    let sum = ax;
    for (let n = 1; term > sum * 1e-17; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  } else {
    let t = ax;
    for (let n = 60; n > 0; n--) t = ax + n / 2 / t;
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / t;
  }
  return x < 0 ? -r : r;
}
