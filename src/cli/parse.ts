/**
 * @file The expression language of the `adjoint` command-line tool: a hand-written tokenizer and
 * recursive-descent parser that turns text such as `(x1 + x2) * sin(x1)` into a small AST. The
 * text is only ever parsed, never handed to `eval` or `new Function`, and the grammar has no
 * member access, strings, statements or assignments, so nothing a user types can run as JS.
 *
 * Grammar (lowest precedence first):
 *
 *     expr    := sum
 *     sum     := product (("+" | "-") product)*
 *     product := unary (("*" | "/") unary)*
 *     unary   := ("-" | "+") unary | power
 *     power   := primary ("**" unary)?          right-associative; -x**2 is -(x**2)
 *     primary := NUMBER | NAME | NAME "(" (expr ("," expr)*)? ")" | "(" expr ")"
 *
 * Numbers are decimal (`2`, `.5`, `1e-3`, `2.5E+4`); `pi` and `e` are constants.
 */

import { AdError } from "../errors.js";

/**
 * A mistake in what the user typed on the command line: a syntax error, an unknown function or
 * variable, a bad number or flag. The CLI prints its one-line message and exits with status 2.
 * @example
 * try { parseExpression("x +"); } catch (e) { e instanceof CliError; } // true
 */
export class CliError extends AdError {
  /** 1-based column in the expression where the problem is, when it is about the expression. */
  readonly column: number | undefined;
  constructor(message: string, column?: number) {
    super(message);
    this.column = column;
  }
}

/** Offsets are 0-based positions in the source text. */
interface NodeBase {
  readonly pos: number;
}
/** A numeric literal. */
export interface NumberNode extends NodeBase {
  readonly kind: "number";
  readonly value: number;
  /** The literal as written. */
  readonly text: string;
}
/** A named constant (`pi`, `e`). */
export interface ConstantNode extends NodeBase {
  readonly kind: "constant";
  readonly name: string;
  readonly value: number;
}
/** A variable: a name that gets its value from `--at`. */
export interface VariableNode extends NodeBase {
  readonly kind: "variable";
  readonly name: string;
}
/** Unary `-x` or `+x`. */
export interface UnaryNode extends NodeBase {
  readonly kind: "unary";
  readonly op: "-" | "+";
  readonly arg: Expr;
}
/** The binary operators. */
export type BinaryOp = "+" | "-" | "*" | "/" | "**";
/** `left op right`. */
export interface BinaryNode extends NodeBase {
  readonly kind: "binary";
  readonly op: BinaryOp;
  readonly left: Expr;
  readonly right: Expr;
}
/** A function call `name(args...)`. */
export interface CallNode extends NodeBase {
  readonly kind: "call";
  readonly name: string;
  readonly args: readonly Expr[];
}
/** A parsed expression. */
export type Expr = NumberNode | ConstantNode | VariableNode | UnaryNode | BinaryNode | CallNode;

/** The named constants of the expression language. */
export const CONSTANTS: ReadonlyMap<string, number> = new Map([
  ["pi", Math.PI],
  ["e", Math.E],
]);

/** Deepest nesting of parentheses, calls and unary operators accepted (keeps the stack safe). */
const MAX_DEPTH = 256;
/** Longest expression accepted, in characters. */
const MAX_LENGTH = 10_000;

type TokenKind = "number" | "name" | "op" | "end";
interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly pos: number;
}

const OPERATORS = ["**", "+", "-", "*", "/", "(", ")", ","] as const;
const NUMBER_RE = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*/;

/** What a stray character probably meant, to make the error message useful. */
function hintFor(ch: string): string {
  switch (ch) {
    case "^":
      return " (use ** for powers)";
    case ".":
      return " (member access is not supported; numbers are written 0.5 or .5)";
    case "[":
    case "]":
    case "{":
    case "}":
      return " (only numbers, variables, operators and function calls are allowed)";
    case "'":
    case '"':
    case "`":
      return " (strings are not supported)";
    case ";":
      return " (one expression only)";
    case "=":
      return " (assignments and comparisons are not supported; give values with --at)";
    default:
      return "";
  }
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f || code > 0x7e)
    return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return `'${ch}'`;
}

function syntaxError(src: string, pos: number, what: string): CliError {
  const col = pos + 1;
  return new CliError(`syntax error at column ${col} of ${JSON.stringify(src)}: ${what}`, col);
}

/** Split `src` into tokens; throws `CliError` on a character the language does not have. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r") {
      i++;
      continue;
    }
    const rest = src.slice(i);
    const num = NUMBER_RE.exec(rest);
    if (num !== null) {
      const text = num[0];
      // A number glued to more letters or dots: "1e", "2.5e+", "1.2.3" or "2x".
      const next = src[i + text.length];
      if (next !== undefined && /[A-Za-z_.]/.test(next)) {
        if (/[eE.]/.test(next)) {
          const bad = /^[0-9A-Za-z_.]*(?:(?<=[eE])[+-][0-9]*)?/.exec(rest)![0];
          throw syntaxError(src, i, `bad number '${bad}'`);
        }
        const glued = NAME_RE.exec(rest.slice(text.length))![0];
        throw syntaxError(
          src,
          i + text.length,
          `unexpected name '${glued}' right after ${text} (write ${text} * ${glued} to multiply)`,
        );
      }
      out.push({ kind: "number", text, pos: i });
      i += text.length;
      continue;
    }
    const name = NAME_RE.exec(rest);
    if (name !== null) {
      out.push({ kind: "name", text: name[0], pos: i });
      i += name[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => rest.startsWith(o));
    if (op !== undefined) {
      out.push({ kind: "op", text: op, pos: i });
      i += op.length;
      continue;
    }
    const c = String.fromCodePoint(src.codePointAt(i)!);
    throw syntaxError(src, i, `unexpected character ${describeChar(c)}${hintFor(c)}`);
  }
  out.push({ kind: "end", text: "", pos: src.length });
  return out;
}

function describeToken(t: Token): string {
  switch (t.kind) {
    case "end":
      return "end of expression";
    case "number":
      return `number ${t.text}`;
    case "name":
      return `name '${t.text}'`;
    default:
      return `'${t.text}'`;
  }
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(
    private readonly src: string,
    private readonly tokens: readonly Token[],
  ) {}

  private peek(): Token {
    return this.tokens[this.i]!;
  }
  private next(): Token {
    const t = this.tokens[this.i]!;
    if (t.kind !== "end") this.i++;
    return t;
  }
  private isOp(text: string): boolean {
    const t = this.peek();
    return t.kind === "op" && t.text === text;
  }
  private fail(t: Token, expected?: string): never {
    const what = `unexpected ${describeToken(t)}${expected === undefined ? "" : ` (expected ${expected})`}`;
    throw syntaxError(this.src, t.pos, what);
  }
  private enter(t: Token): void {
    if (++this.depth > MAX_DEPTH) throw syntaxError(this.src, t.pos, `nested more than ${MAX_DEPTH} deep`);
  }

  parseAll(): Expr {
    if (this.peek().kind === "end") throw new CliError("empty expression");
    const e = this.sum();
    const t = this.peek();
    if (t.kind !== "end") {
      if (t.kind === "op" && t.text === ")") throw syntaxError(this.src, t.pos, "unmatched ')'");
      this.fail(t, "an operator or the end of the expression");
    }
    return e;
  }

  private sum(): Expr {
    let left = this.product();
    while (this.isOp("+") || this.isOp("-")) {
      const t = this.next();
      const right = this.product();
      left = { kind: "binary", op: t.text as "+" | "-", left, right, pos: t.pos };
    }
    return left;
  }

  private product(): Expr {
    let left = this.unary();
    while (this.isOp("*") || this.isOp("/")) {
      const t = this.next();
      const right = this.unary();
      left = { kind: "binary", op: t.text as "*" | "/", left, right, pos: t.pos };
    }
    return left;
  }

  private unary(): Expr {
    if (this.isOp("-") || this.isOp("+")) {
      const t = this.next();
      this.enter(t);
      const arg = this.unary();
      this.depth--;
      return { kind: "unary", op: t.text as "-" | "+", arg, pos: t.pos };
    }
    return this.power();
  }

  private power(): Expr {
    const base = this.primary();
    if (this.isOp("**")) {
      const t = this.next();
      this.enter(t);
      const exponent = this.unary(); // right-associative, and 2 ** -1 is allowed
      this.depth--;
      return { kind: "binary", op: "**", left: base, right: exponent, pos: t.pos };
    }
    return base;
  }

  private primary(): Expr {
    const t = this.next();
    if (t.kind === "number") {
      return { kind: "number", value: Number(t.text), text: t.text, pos: t.pos };
    }
    if (t.kind === "name") {
      if (this.isOp("(")) {
        this.next();
        this.enter(t);
        const args: Expr[] = [];
        if (!this.isOp(")")) {
          for (;;) {
            args.push(this.sum());
            if (this.isOp(",")) {
              this.next();
              continue;
            }
            break;
          }
        }
        const close = this.next();
        if (!(close.kind === "op" && close.text === ")")) this.fail(close, `',' or ')' to close ${t.text}(`);
        this.depth--;
        return { kind: "call", name: t.text, args, pos: t.pos };
      }
      const c = CONSTANTS.get(t.text);
      if (c !== undefined) return { kind: "constant", name: t.text, value: c, pos: t.pos };
      return { kind: "variable", name: t.text, pos: t.pos };
    }
    if (t.kind === "op" && t.text === "(") {
      this.enter(t);
      const inner = this.sum();
      const close = this.next();
      if (!(close.kind === "op" && close.text === ")")) this.fail(close, "')'");
      this.depth--;
      return inner;
    }
    this.fail(t, "a number, a name or '('");
  }
}

/**
 * Parse an expression of the CLI's language into an AST. Throws `CliError` (with the column) on
 * any syntax error.
 * @example
 * parseExpression("-x**2"); // unary minus applied to (x ** 2)
 */
export function parseExpression(src: string): Expr {
  if (src.length > MAX_LENGTH) throw new CliError(`expression longer than ${MAX_LENGTH} characters`);
  return new Parser(src, tokenize(src)).parseAll();
}

/**
 * The variables an expression uses, in order of first appearance.
 * @example
 * variablesOf(parseExpression("y * sin(x) + y")); // ["y", "x"]
 */
export function variablesOf(e: Expr): string[] {
  const seen = new Set<string>();
  const walk = (n: Expr): void => {
    switch (n.kind) {
      case "variable":
        seen.add(n.name);
        return;
      case "unary":
        walk(n.arg);
        return;
      case "binary":
        walk(n.left);
        walk(n.right);
        return;
      case "call":
        n.args.forEach(walk);
        return;
      default:
        return;
    }
  };
  walk(e);
  return [...seen];
}

/**
 * The expression written back with every operation in parentheses, showing how it was grouped.
 * @example
 * toSource(parseExpression("a - b - c ** d ** 2")); // "((a - b) - (c ** (d ** 2)))"
 */
export function toSource(e: Expr): string {
  switch (e.kind) {
    case "number":
      return e.text;
    case "constant":
    case "variable":
      return e.name;
    case "unary":
      return `(${e.op}${toSource(e.arg)})`;
    case "binary":
      return `(${toSource(e.left)} ${e.op} ${toSource(e.right)})`;
    case "call":
      return `${e.name}(${e.args.map(toSource).join(", ")})`;
  }
}
