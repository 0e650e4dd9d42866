/**
 * @file The `adjoint` command-line tool. Every CLI test runs the real built binary
 * (`dist/cli/main.js`, the package's `bin`) in a subprocess and checks its stdout, stderr and
 * exit status: grad and hessian of the worked examples, explain in every format, help texts,
 * one-line errors with status 2, and that user text is parsed, never run as JS. The parser's
 * precedence and associativity are unit-tested directly.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CliError, parseExpression, toSource, variablesOf } from "../src/cli/parse.js";
import { VERSION } from "../src/cli/version.js";
import { checkExpression } from "../src/cli/whitelist.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built binary with `args` in a subprocess. */
function cli(...args: string[]): Promise<Run> {
  assert.ok(existsSync(BIN), `${BIN} is missing: run npm run build first`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A successful run: status 0, nothing on stderr; returns stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.stderr, "", `stderr of adjoint ${args.join(" ")}`);
  assert.equal(r.code, 0, `status of adjoint ${args.join(" ")}`);
  return r.stdout;
}

/** A usage error: status 2, nothing on stdout, exactly one line `adjoint: ...` on stderr. */
async function usageError(args: string[], pattern?: RegExp): Promise<string> {
  const r = await cli(...args);
  const what = `adjoint ${JSON.stringify(args)}`;
  assert.equal(r.code, 2, `${what} should exit with 2; stderr: ${r.stderr}`);
  assert.equal(r.stdout, "", `${what} should print nothing on stdout`);
  assert.match(r.stderr, /^adjoint: [^\n]+\n$/, `${what} should print one line on stderr, got ${r.stderr}`);
  if (pattern !== undefined) assert.match(r.stderr, pattern);
  return r.stderr;
}

/** Many usage errors, run concurrently. */
async function usageErrors(cases: readonly (readonly [string[], RegExp?])[]): Promise<void> {
  await Promise.all(cases.map(([args, pattern]) => usageError(args, pattern)));
}

const SEEDS = "(x1 + x2) * sin(x1)";
const ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2";

// ---------------------------------------------------------------------------------------------

describe("parser", () => {
  const grouped = (s: string) => toSource(parseExpression(s));

  test("precedence: * and / bind tighter than + and -, left-associative", () => {
    assert.equal(grouped("a + b * c"), "(a + (b * c))");
    assert.equal(grouped("a - b - c"), "((a - b) - c)");
    assert.equal(grouped("a / b / c"), "((a / b) / c)");
    assert.equal(grouped("a * b + c / d - e1"), "(((a * b) + (c / d)) - e1)");
    assert.equal(grouped("(a + b) * c"), "((a + b) * c)");
  });

  test("** is right-associative and binds tighter than unary minus", () => {
    assert.equal(grouped("a ** b ** c"), "(a ** (b ** c))");
    assert.equal(grouped("-x**2"), "(-(x ** 2))");
    assert.equal(grouped("-x ** -y"), "(-(x ** (-y)))");
    assert.equal(grouped("2 ** -1"), "(2 ** (-1))");
    assert.equal(grouped("(-x)**2"), "((-x) ** 2)");
    assert.equal(grouped("a * b ** c"), "(a * (b ** c))");
    assert.equal(grouped("--x"), "(-(-x))");
    assert.equal(grouped("+x - -y"), "((+x) - (-y))");
  });

  test("numbers, constants, calls and variables", () => {
    assert.equal(grouped("1e-3 + .5 + 2.5E+4 + 7."), "(((1e-3 + .5) + 2.5E+4) + 7.)");
    const n = parseExpression(".5");
    assert.ok(n.kind === "number" && n.value === 0.5);
    const pi = parseExpression("pi");
    assert.ok(pi.kind === "constant" && pi.value === Math.PI);
    const e = parseExpression("e");
    assert.ok(e.kind === "constant" && e.value === Math.E);
    assert.equal(grouped("atan2(y, x) + f()"), "(atan2(y, x) + f())");
    assert.equal(grouped("sin(cos(x) * 2)"), "sin((cos(x) * 2))");
    assert.deepEqual(variablesOf(parseExpression("y * sin(x) + y * pi + e")), ["y", "x"]);
  });

  test("syntax errors are CliErrors that name the column", () => {
    const cases: [string, number][] = [
      ["x +", 4],
      ["(x + ) * 2", 6],
      ["x)", 2],
      ["sin(x", 6],
      ["x y", 3],
      ["2x", 2],
      ["1e", 1],
      ["x^2", 2],
      ["a.b", 2],
      ["a; b", 2],
      ["`x`", 1],
      ["'x'", 1],
      ["x = 1", 3],
      ["f(,)", 3],
      ["[1]", 1],
    ];
    for (const [src, col] of cases) {
      assert.throws(
        () => parseExpression(src),
        (e: unknown) => e instanceof CliError && e.column === col && !e.message.includes("\n"),
        src,
      );
    }
    assert.throws(() => parseExpression(""), CliError);
    assert.throws(() => parseExpression("   "), CliError);
  });

  test("deep nesting is an error, not a stack overflow", () => {
    assert.throws(() => parseExpression(`${"(".repeat(3000)}x${")".repeat(3000)}`), /nested more than/);
    assert.throws(() => parseExpression(`${"-".repeat(5000)}x`), /nested more than/);
    assert.equal(grouped(`${"(".repeat(50)}x${")".repeat(50)}`), "x");
  });
});

// ---------------------------------------------------------------------------------------------

describe("adjoint grad", () => {
  test("the seeds' example: value and gradient", async () => {
    const out = await ok("grad", SEEDS, "--at", "x1=1,x2=2");
    assert.equal(
      out,
      [
        "f(x1, x2) = (x1 + x2) * sin(x1)",
        "at x1 = 1, x2 = 2",
        "",
        "f      = 2.5244",
        "df/dx1 = 2.4624",
        "df/dx2 = 0.8415",
        "",
      ].join("\n"),
    );
  });

  test("--format json carries full float64 precision", async () => {
    const j = JSON.parse(await ok("grad", SEEDS, "--at", "x1=1,x2=2", "--format", "json"));
    assert.equal(j.expression, SEEDS);
    assert.deepEqual(j.at, { x1: 1, x2: 2 });
    assert.ok(Math.abs(j.value - 3 * Math.sin(1)) < 1e-15);
    assert.ok(Math.abs(j.gradient.x1 - (Math.sin(1) + 3 * Math.cos(1))) < 1e-15);
    assert.ok(Math.abs(j.gradient.x2 - Math.sin(1)) < 1e-15);
  });

  test("every whitelisted function differentiates (against central differences)", async () => {
    const expr =
      "sin(x) + cos(x) + tan(x) + asin(x) + acos(x) + atan(x) + sinh(x) + cosh(x) + tanh(x)" +
      " + exp(x) + log(x) + log1p(x) + expm1(x) + log2(x) + log10(x) + sqrt(x) + square(x) + abs(x)" +
      " + sigmoid(x) + relu(x) + softplus(x) + erf(x) + gelu(x) + floor(x) + ceil(x) + round(x)" +
      " + sign(x) + max(x, y) + min(x, y) + pow(x, y) + atan2(y, x) + hypot(x, y) + x ** y / y - pi * e";
    const x = 0.3;
    const y = 0.7;
    // erf by the midpoint rule on exp(-s^2): smooth in t, so its differences are accurate too.
    const erf = (t: number) => {
      let s = 0;
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const u = ((i + 0.5) / n) * t;
        s += Math.exp(-u * u);
      }
      return ((2 / Math.sqrt(Math.PI)) * s * t) / n;
    };
    const terms = (x: number, y: number): number[] => [
      Math.sin(x),
      Math.cos(x),
      Math.tan(x),
      Math.asin(x),
      Math.acos(x),
      Math.atan(x),
      Math.sinh(x),
      Math.cosh(x),
      Math.tanh(x),
      Math.exp(x),
      Math.log(x),
      Math.log1p(x),
      Math.expm1(x),
      Math.log2(x),
      Math.log10(x),
      Math.sqrt(x),
      x * x,
      Math.abs(x),
      1 / (1 + Math.exp(-x)),
      Math.max(x, 0),
      Math.log1p(Math.exp(x)),
      erf(x),
      0.5 * x * (1 + erf(x / Math.SQRT2)),
      Math.floor(x),
      Math.ceil(x),
      Math.round(x),
      Math.sign(x),
      Math.max(x, y),
      Math.min(x, y),
      x ** y,
      Math.atan2(y, x),
      Math.hypot(x, y),
      x ** y / y,
      -Math.PI * Math.E,
    ];
    const f = (x: number, y: number) => terms(x, y).reduce((a, b) => a + b, 0);
    const j = JSON.parse(await ok("grad", expr, "--at", `x=${x},y=${y}`, "--format", "json"));
    const h = 1e-5;
    const dx = (f(x + h, y) - f(x - h, y)) / (2 * h);
    const dy = (f(x, y + h) - f(x, y - h)) / (2 * h);
    assert.ok(Math.abs(j.value - f(x, y)) < 1e-6, `value ${j.value} vs ${f(x, y)}`);
    assert.ok(Math.abs(j.gradient.x - dx) < 1e-5, `df/dx ${j.gradient.x} vs ${dx}`);
    assert.ok(Math.abs(j.gradient.y - dy) < 1e-5, `df/dy ${j.gradient.y} vs ${dy}`);
  });

  test("unused variables get 0, constants fold, values may be constant expressions", async () => {
    const j = JSON.parse(await ok("grad", "2 * pi * x", "--at", "x=pi/4,y=-2e-3", "--format", "json"));
    assert.deepEqual(j.at, { x: Math.PI / 4, y: -2e-3 });
    assert.ok(Math.abs(j.gradient.x - 2 * Math.PI) < 1e-15);
    assert.equal(j.gradient.y, 0);
    const k = JSON.parse(await ok("grad", "-x**2", "--at", "x=3", "--format", "json"));
    assert.equal(k.value, -9);
    assert.equal(k.gradient.x, -6);
    const c = JSON.parse(await ok("grad", "sin(2) + 1", "--at", "x=3", "--format", "json"));
    assert.ok(Math.abs(c.value - (Math.sin(2) + 1)) < 1e-15);
    assert.equal(c.gradient.x, 0);
  });

  test("--digits, --at=..., repeated --at and -- before an expression that starts with a dash", async () => {
    const [a, b, c, d] = await Promise.all([
      ok("grad", SEEDS, "--at", "x1=1,x2=2", "--digits", "8"),
      ok("grad", "--at", "x=3", "--", "-x**2"),
      ok("grad", "-x**2", "--at=x=3"),
      ok("grad", "x*y", "--at", "x=3", "--at", "y=2"),
    ]);
    assert.match(a, /^df\/dx1 = 2\.4623779$/m);
    assert.match(b, /^df\/dx = -6$/m);
    assert.match(c, /^df\/dx = -6$/m);
    assert.match(d, /^df\/dy = 3$/m);
  });
});

describe("adjoint hessian", () => {
  test("Rosenbrock at (1, 1)", async () => {
    const out = await ok("hessian", ROSENBROCK, "--at", "x=1,y=1");
    assert.match(out, /^f = 0$/m);
    assert.match(out, /^\s+x\s+y$/m);
    assert.match(out, /^x\s+802\s+-400$/m);
    assert.match(out, /^y\s+-400\s+200$/m);
  });

  test("--format json", async () => {
    const j = JSON.parse(await ok("hessian", ROSENBROCK, "--at", "x=1,y=1", "--format", "json"));
    assert.deepEqual(j.variables, ["x", "y"]);
    assert.deepEqual(j.hessian, [
      [802, -400],
      [-400, 200],
    ]);
    assert.equal(j.value, 0);
  });

  test("mixed partials of the seeds' example", async () => {
    const j = JSON.parse(await ok("hessian", SEEDS, "--at", "x1=1,x2=2", "--format", "json"));
    const [[a, b], [c, d]] = j.hessian as [[number, number], [number, number]];
    assert.ok(Math.abs(a - (2 * Math.cos(1) - 3 * Math.sin(1))) < 1e-14);
    assert.ok(Math.abs(b - Math.cos(1)) < 1e-14 && Math.abs(c - Math.cos(1)) < 1e-14);
    assert.equal(d, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe("adjoint explain", () => {
  const at = ["--at", "x1=1,x2=2"];

  test("text: the expression, the forward table with tangents, the reverse table with adjoints", async () => {
    const out = await ok("explain", SEEDS, ...at);
    assert.match(out, /^f\(x1, x2\) = \(x1 \+ x2\) \* sin\(x1\)\n\n/);
    assert.match(out, /Forward mode \(tangent seed v̇1 = 1, v̇2 = 0\)/);
    assert.match(out, /^v3\s+v1 \+ v2\s+3\s/m);
    assert.match(out, /^v4\s+sin\(v1\)\s+0\.8415\s/m);
    assert.match(out, /^v5\s+v3 × v4\s+2\.524\s/m);
    assert.match(out, /v̇5 = 2\.462 = ∂f\/∂x1/);
    assert.match(out, /Reverse mode/);
    assert.match(out, /v̄1 = 1\.621 \+ 0\.8415 = 2\.462 = ∂f\/∂x1, v̄2 = 0\.8415 = ∂f\/∂x2/);
    assert.ok(out.endsWith("\n"));
  });

  test("--seed picks the forward direction", async () => {
    const [x2, dir] = await Promise.all([
      ok("explain", SEEDS, ...at, "--seed", "x2"),
      ok("explain", SEEDS, ...at, "--seed", "x1=1,x2=1"),
    ]);
    assert.match(x2, /tangent seed v̇1 = 0, v̇2 = 1/);
    assert.match(x2, /v̇5 = 0\.8415 = ∂f\/∂x2/);
    assert.match(dir, /tangent seed v̇1 = 1, v̇2 = 1/);
    assert.match(dir, /v̇5 = 3\.304/); // 2.462 + 0.8415, the directional derivative
  });

  test("markdown, html, dot and mermaid", async () => {
    const [md, html, dot, mermaid] = await Promise.all(
      ["markdown", "html", "dot", "mermaid"].map((f) => ok("explain", SEEDS, ...at, "--format", f)),
    );
    assert.match(md!, /^`f\(x1, x2\) = \(x1 \+ x2\) \* sin\(x1\)`\n/);
    assert.match(md!, /^\| Variable \| Operation \| Value \| Tangent v̇ \| Rule \|$/m);
    assert.match(md!, /^\| v4 \| sin\(v1\) \| 0\.8415 \|/m);
    assert.match(html!, /^<section class="adjoint-explain">\n/);
    assert.match(html!, /<td class="operation">sin\(v1\)<\/td>/);
    assert.match(html!, /<\/section>\n$/);
    assert.match(dot!, /^digraph explain \{\n/);
    assert.match(dot!, /^ {2}v1 -> v3;$/m);
    assert.match(dot!, /^ {2}v4 -> v5;$/m);
    assert.match(dot!, /\}\n$/);
    assert.match(mermaid!, /^flowchart LR\n/);
    assert.match(mermaid!, /^ {2}v3 --> v5$/m);
  });
});

// ---------------------------------------------------------------------------------------------

describe("help and version", () => {
  test("adjoint --help, -h, help and no arguments print the overview", async () => {
    const [out, h, help, none] = await Promise.all([ok("--help"), ok("-h"), ok("help"), ok()]);
    for (const word of ["explain", "grad", "hessian", "--at", "sin", "hypot", "Usage"])
      assert.ok(out.includes(word), word);
    assert.equal(h, out);
    assert.equal(help, out);
    assert.equal(none, out);
  });

  test("help for each command, three ways", async () => {
    const commands = ["explain", "grad", "hessian"];
    const [helps, flags, [short, withArgs]] = await Promise.all([
      Promise.all(commands.map((c) => ok("help", c))),
      Promise.all(commands.map((c) => ok(c, "--help"))),
      Promise.all([ok("grad", "-h"), ok("grad", "x", "--at", "x=1", "--help")]),
    ]);
    commands.forEach((c, i) => {
      assert.match(helps[i]!, new RegExp(`^Usage: adjoint ${c} EXPR`));
      assert.equal(flags[i], helps[i]);
    });
    assert.equal(short, helps[1]);
    assert.equal(withArgs, helps[1]);
    assert.match(helps[0]!, /--seed/);
    assert.match(helps[0]!, /mermaid/);
  });

  test("help functions lists the whitelist", async () => {
    const out = await ok("help", "functions");
    for (const name of ["sin", "log1p", "gelu", "max", "hypot", "log10"])
      assert.match(out, new RegExp(`^  ${name}\\(`, "m"));
    assert.match(out, /^ {2}atan2\(y, x\)/m);
  });

  test("--version prints the package version", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(VERSION, pkg.version);
    assert.equal(await ok("--version"), `${pkg.version}\n`);
    assert.equal(await ok("-v"), `${pkg.version}\n`);
  });
});

// ---------------------------------------------------------------------------------------------

describe("mistakes: one line on stderr, exit status 2", () => {
  test("bad numbers in --at", () =>
    usageErrors([
      [["grad", "x", "--at", "x=abc"], /bad number 'abc'/],
      [["grad", "x", "--at", "x=1.2.3"], /bad number/],
      [["grad", "x", "--at", "x=1e"], /bad number/],
      [["grad", "x", "--at", "x=0x10"], /bad number/],
      [["grad", "x", "--at", "x=y"], /bad number 'y'/],
      [["grad", "x", "--at", "x=1/0"], /not a finite number/],
      [["grad", "x", "--at", "x="], /missing value for 'x'/],
      [["grad", "x", "--at", "x"], /expected name=value/],
      [["grad", "x", "--at", "x=1,"], /empty entry/],
      [["grad", "x", "--at", "1x=1"], /not a variable name/],
      [["grad", "x", "--at", "pi=1"], /constant/],
    ]));

  test("unknown and duplicate variables", () =>
    usageErrors([
      [["grad", "x * y", "--at", "x=1"], /unknown variable 'y' at column 5/],
      [["explain", "x * y", "--at", "x=1"], /unknown variable 'y'/],
      [["grad", "x * y"], /missing --at; the expression uses x, y/],
      [["hessian", "x", "--at", "x=1,x=2"], /'x' given more than once/],
      [["grad", "x", "--at", "x=1", "--at", "x=2"], /'x' given more than once/],
    ]));

  test("syntax errors and unknown functions", () =>
    usageErrors([
      [["grad", "(x + ) * 2", "--at", "x=1"], /syntax error at column 6/],
      [["grad", "x ^ 2", "--at", "x=1"], /use \*\* for powers/],
      [["grad", "foo(x)", "--at", "x=1"], /unknown function 'foo' at column 1 \(known: sin, cos/],
      [["grad", "sin(x, x)", "--at", "x=1"], /sin\(\) takes 1 argument, got 2/],
      [["grad", "max(x)", "--at", "x=1"], /max\(\) takes 2 arguments, got 1/],
      [["grad", "", "--at", "x=1"], /empty expression/],
      [["explain", "x +", "--at", "x=1"], /syntax error at column 4/],
      [["hessian", "sin(x", "--at", "x=1"], /syntax error/],
    ]));

  test("unknown commands, options and formats; missing arguments", () =>
    usageErrors([
      [["frobnicate"], /unknown command 'frobnicate'/],
      [["help", "frobnicate"], /unknown command 'frobnicate'/],
      [["--frob"], /unknown option '--frob'/],
      [["grad", "x", "--at", "x=1", "--seed", "x"], /unknown option '--seed' for grad/],
      [["grad", "x", "--at", "x=1", "--bogus"], /unknown option '--bogus'/],
      [["grad", "x", "--at"], /--at needs a value/],
      [["grad", "--at", "x=1"], /missing EXPR/],
      [["grad", "x", "y", "--at", "x=1"], /expected one expression, got 2/],
      [["grad", "x", "--at", "x=1", "--format", "xml"], /unknown format 'xml'.*text, json/],
      [["explain", "x", "--at", "x=1", "--format", "json"], /unknown format 'json'/],
      [["grad", "x", "--at", "x=1", "--format", "json", "--format", "text"], /more than once/],
      [["grad", "x", "--at", "x=1", "--digits", "-1"], /--digits/],
      [["grad", "x", "--at", "x=1", "--digits", "99"], /--digits/],
      [["explain", "x", "--at", "x=1", "--seed", "q"], /--seed: 'q' is not a variable/],
      [["explain", "x", "--at", "x=1", "--seed", "x=abc"], /bad number 'abc'/],
      [["--version", "extra"], /takes no arguments/],
    ]));

  test("user text is parsed, never run as JS", async () => {
    // Exit status 3 would mean process.exit ran; 2 is the usage error.
    await usageErrors([
      [["grad", "process.exit(3)", "--at", "x=1"], /syntax error at column 8.*'\.'/],
      [["grad", "constructor", "--at", "x=1"], /unknown variable 'constructor'/],
      [["grad", "constructor(x)", "--at", "x=1"], /unknown function 'constructor'/],
      [["grad", "this", "--at", "x=1"], /unknown variable 'this'/],
      [["grad", "x.constructor", "--at", "x=1"], /syntax error at column 2/],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a JS template literal is the hostile input
      [["grad", "`${x}`", "--at", "x=1"], /syntax error at column 1/],
      [["grad", "a; b", "--at", "a=1,b=2"], /syntax error at column 2/],
      [["grad", "x", "--at", "x=process.exit(3)"], /bad number/],
    ]);
  });
});

describe("JS that is not in the language", () => {
  const hostile = [
    "process.exit(3)",
    "x['constructor']",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a JS template literal is the hostile input
    "`${x}`",
    "a; b",
    "(() => 1)()",
    "new Function('return 1')()",
    "eval('1')",
    "require('fs')",
    "import('fs')",
    "constructor(x)",
    "__proto__(x)",
    "toString(x)",
    "valueOf(x)",
    "hasOwnProperty(x)",
    "x = 1",
    "x, y",
    "x ? 1 : 2",
    "!x",
    "x || 1",
    "x && 1",
    "x < 1",
    "'1' + x",
    '"1" + x',
    "x // comment",
    "/* c */ x",
    "0x10 + x",
    "1_000 + x",
    "1n + x",
    "x\u00a0+ 1",
    "x++",
    "{}",
    "[x]",
    "x?.y",
    "#x",
    "@x",
  ];
  test("every one is a syntax or whitelist error, and nothing runs", () => {
    for (const src of hostile) {
      assert.throws(
        () => checkExpression(parseExpression(src), ["x", "y", "a", "b"]),
        (e: unknown) => e instanceof CliError && !e.message.includes("\n"),
        src,
      );
    }
  });

  test("names the language does not know are plain variables or unknown functions", () => {
    for (const name of ["process", "this", "globalThis", "constructor", "__proto__", "eval", "Function"]) {
      assert.throws(() => checkExpression(parseExpression(name), ["x"]), /unknown variable/, name);
      assert.throws(() => checkExpression(parseExpression(`${name}(x)`), ["x"]), /unknown function/, name);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("the bin entry", () => {
  test("package.json points bin.adjoint at the built main, which starts with a shebang", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(pkg.bin.adjoint, "./dist/cli/main.js");
    assert.match(readFileSync(BIN, "utf8"), /^#!\/usr\/bin\/env node\n/);
  });
});
