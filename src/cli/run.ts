/**
 * @file The `adjoint` command line as a function from arguments to output: commands, flags,
 * `--at` values, help texts and the one-line error messages. Every mistake in the input is found
 * here, before `commands.ts` (which loads the differentiation library and does the work) is
 * imported, so errors and help come back quickly. `train` checks its flags in `train-args.ts`
 * and then loads `train.ts`, which writes progress and files through `TrainIO` (`node-io.ts`).
 * `main.ts` is the executable that calls `runCli` and writes its result; nothing here touches
 * Node's APIs.
 */

import type { CommandName, Request, ValueSpec } from "./commands.js";
import { CliError, CONSTANTS, type Expr, parseExpression, variablesOf } from "./parse.js";
import type { TrainIO } from "./train.js";
import { parseTrainArgs, TRAIN_SUMMARY, TRAIN_USAGE, trainHelp } from "./train-args.js";
import { VERSION } from "./version.js";
import { checkExpression, FUNCTION_NAMES, FUNCTION_SPECS } from "./whitelist.js";

/** What a run of the CLI produced: the exit status and the text for stdout and stderr. */
export interface CliResult {
  /** 0 on success, 2 for a usage error (bad input), 1 for an internal failure. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

// ---------------------------------------------------------------------------------------------
// Commands and their flags

interface FlagSpec {
  /** May be given several times (values are joined with commas). */
  readonly repeatable?: boolean;
}

interface CommandSpec {
  readonly summary: string;
  readonly usage: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly formats: readonly string[];
  readonly details: string;
}

const EXPLAIN_FORMATS = ["text", "markdown", "html", "dot", "mermaid"] as const;

const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  explain: {
    summary: "print the Wengert list with values, tangents (forward mode) and adjoints (reverse mode)",
    usage: "adjoint explain EXPR --at x1=1,x2=2 [--seed x1] [--format text|markdown|html|dot|mermaid]",
    flags: { at: { repeatable: true }, seed: {}, format: {} },
    formats: EXPLAIN_FORMATS,
    details: [
      "Evaluates EXPR at the point given by --at and prints the trace tables a textbook shows:",
      "every intermediate value of the Wengert list in forward order, its tangent for the",
      "direction --seed (forward mode, JVP) and its adjoint (reverse mode, VJP of the output).",
      "",
      "Options:",
      "  --at NAME=VALUE,...   the point; one entry per variable, in this order (required)",
      "  --seed NAME           differentiate forward along NAME: its tangent is 1, the others' 0",
      "                        (default: the first variable); --seed x=1,y=-1 gives a direction",
      "  --format FORMAT       text (default), markdown, html, dot (Graphviz) or mermaid",
      "",
      "Example:",
      '  adjoint explain "(x1 + x2) * sin(x1)" --at x1=1,x2=2 --seed x2',
    ].join("\n"),
  },
  grad: {
    summary: "print the value and the gradient (reverse mode) at a point",
    usage: "adjoint grad EXPR --at x=1,y=2 [--format text|json] [--digits N]",
    flags: { at: { repeatable: true }, format: {}, digits: {} },
    formats: ["text", "json"],
    details: [
      "Prints f and df/dv for every variable v given with --at, in that order.",
      "",
      "Options:",
      "  --at NAME=VALUE,...   the point; one entry per variable, in this order (required)",
      "  --format FORMAT       text (default) or json (full float64 precision)",
      "  --digits N            decimals shown in text output (default 4, at most 17)",
      "",
      "Example:",
      '  adjoint grad "(x1 + x2) * sin(x1)" --at x1=1,x2=2',
    ].join("\n"),
  },
  hessian: {
    summary: "print the value and the Hessian matrix (forward over reverse) at a point",
    usage: "adjoint hessian EXPR --at x=1,y=2 [--format text|json] [--digits N]",
    flags: { at: { repeatable: true }, format: {}, digits: {} },
    formats: ["text", "json"],
    details: [
      "Prints f and the matrix of second derivatives d2f/(du dv), rows and columns in the",
      "order of --at.",
      "",
      "Options:",
      "  --at NAME=VALUE,...   the point; one entry per variable, in this order (required)",
      "  --format FORMAT       text (default) or json (full float64 precision)",
      "  --digits N            decimals shown in text output (default 4, at most 17)",
      "",
      "Example:",
      '  adjoint hessian "(1 - x)**2 + 100*(y - x**2)**2" --at x=1,y=1',
    ].join("\n"),
  },
};

function isCommand(s: string): s is CommandName {
  return Object.hasOwn(COMMANDS, s);
}

// ---------------------------------------------------------------------------------------------
// Help texts

function wrap(words: readonly string[], indent: string, width = 88): string {
  const lines: string[] = [];
  let line = indent;
  for (const w of words) {
    if (line.length > indent.length && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent;
    }
    line += (line.length > indent.length ? " " : "") + w;
  }
  lines.push(line);
  return lines.join("\n");
}

function languageHelp(): string {
  return [
    "Expressions:",
    "  numbers (2, .5, 1e-3), variables (names given with --at), the constants pi and e,",
    "  + - * / and ** (power: right-associative, and -x**2 is -(x**2)), parentheses, and",
    "  calls of these functions (nothing else; the text is parsed, never run as code):",
    wrap(
      [...FUNCTION_NAMES].map((n, i, all) => (i < all.length - 1 ? `${n},` : n)),
      "    ",
    ),
    "  (adjoint help functions describes each.) Quote the expression for your shell.",
  ].join("\n");
}

function mainHelp(): string {
  const cmds = (Object.keys(COMMANDS) as CommandName[]).map((c) => `  ${c.padEnd(9)}${COMMANDS[c].summary}`);
  return [
    "adjoint: exact derivatives of a math expression, by automatic differentiation",
    "",
    "Usage:",
    ...(Object.keys(COMMANDS) as CommandName[]).map((c) => `  ${COMMANDS[c].usage}`),
    `  ${TRAIN_USAGE}`,
    "  adjoint help [COMMAND]    (or adjoint COMMAND --help; adjoint help functions)",
    "  adjoint --version",
    "",
    "Commands:",
    ...cmds,
    `  ${"train".padEnd(9)}${TRAIN_SUMMARY}`,
    "",
    languageHelp(),
    "",
    "Examples:",
    '  adjoint explain "(x1 + x2) * sin(x1)" --at x1=1,x2=2',
    '  adjoint grad "(x1 + x2) * sin(x1)" --at x1=1,x2=2',
    '  adjoint hessian "(1 - x)**2 + 100*(y - x**2)**2" --at x=1,y=1',
    "  adjoint train --epochs 3 --precision float16",
    "",
    "Exit status: 0 on success, 2 for a mistake in the input, 1 for an internal failure.",
    "",
  ].join("\n");
}

function functionsHelp(): string {
  const entries = Object.entries(FUNCTION_SPECS).map(([name, spec]) => {
    const args = "args" in spec ? spec.args : spec.arity === 1 ? "x" : "x, y";
    return [`${name}(${args})`, spec.doc] as const;
  });
  const width = Math.max(...entries.map(([sig]) => sig.length));
  return [
    "Functions an expression may call:",
    ...entries.map(([sig, doc]) => `  ${sig.padEnd(width)}  ${doc}`),
    "Constants: pi, e. Operators: + - * / ** (right-associative; -x**2 is -(x**2)).",
    "",
  ].join("\n");
}

function commandHelp(c: CommandName): string {
  const s = COMMANDS[c];
  return [`Usage: ${s.usage}`, "", s.details, "", languageHelp(), ""].join("\n");
}

function version(): string {
  return `${VERSION}\n`;
}

// ---------------------------------------------------------------------------------------------
// Argument parsing

interface Invocation {
  readonly command: CommandName;
  readonly positionals: string[];
  readonly flags: Map<string, string>;
}

/** Split the arguments after the command into positionals and `--flag value` pairs. */
function parseArgs(command: CommandName, args: readonly string[]): Invocation {
  const spec = COMMANDS[command];
  const positionals: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("--")) {
      // A single dash is not an option: "-x**2" is an expression.
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const flag = Object.hasOwn(spec.flags, name) ? spec.flags[name] : undefined;
    if (flag === undefined) {
      const known = Object.keys(spec.flags)
        .map((f) => `--${f}`)
        .join(", ");
      throw new CliError(`unknown option '--${name}' for ${command} (options: ${known}, --help)`);
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined) throw new CliError(`--${name} needs a value (see adjoint help ${command})`);
      value = next;
      i++;
    }
    const prev = flags.get(name);
    if (prev !== undefined && !flag.repeatable) throw new CliError(`--${name} given more than once`);
    flags.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  return { command, positionals, flags };
}

/** Split `a=1,b=max(1,2)` at the commas outside parentheses. */
function splitList(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A value on the command line: a number (`-1.5`, `2e-3`) or a constant expression of numbers,
 * `pi`, `e` and the whitelisted functions (`pi/4`, `sqrt(2)`). Checked here; evaluated (and
 * checked to be finite) by `commands.ts`.
 */
function parseValue(raw: string, what: string): ValueSpec {
  const bad = () =>
    new CliError(
      `${what}: bad number '${raw}' (give a number such as 1.5, -2e-3 or an expression such as pi/4)`,
    );
  let expr: Expr;
  try {
    expr = parseExpression(raw);
    checkExpression(expr, []);
  } catch {
    throw bad();
  }
  return { raw, expr, what };
}

interface Assignments {
  readonly names: string[];
  readonly values: ValueSpec[];
}

/** `x1=1,x2=2` → names and values, in order; every name once. */
function parseAssignments(list: string, flag: string): Assignments {
  const names: string[] = [];
  const values: ValueSpec[] = [];
  for (const part of splitList(list)) {
    if (part === "") throw new CliError(`--${flag}: empty entry in '${list}' (write name=value,name=value)`);
    const eq = part.indexOf("=");
    if (eq < 0) throw new CliError(`--${flag}: expected name=value, got '${part}'`);
    const name = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!NAME.test(name)) throw new CliError(`--${flag}: '${name}' is not a variable name`);
    if (CONSTANTS.has(name))
      throw new CliError(`--${flag}: '${name}' is a constant and cannot be a variable`);
    if (names.includes(name)) throw new CliError(`--${flag}: variable '${name}' given more than once`);
    if (raw === "") throw new CliError(`--${flag}: missing value for '${name}'`);
    names.push(name);
    values.push(parseValue(raw, `--${flag} ${name}`));
  }
  return { names, values };
}

function parseFormat(inv: Invocation): string {
  const f = inv.flags.get("format") ?? "text";
  const allowed = COMMANDS[inv.command].formats;
  if (!allowed.includes(f))
    throw new CliError(`--format: unknown format '${f}' for ${inv.command} (formats: ${allowed.join(", ")})`);
  return f;
}

function parseDigits(inv: Invocation): number {
  const raw = inv.flags.get("digits");
  if (raw === undefined) return 4;
  if (!/^\d+$/.test(raw) || Number(raw) > 17)
    throw new CliError(`--digits: expected a whole number from 0 to 17, got '${raw}'`);
  return Number(raw);
}

/** The tangent seed: `--seed x` (x gets 1) or `--seed x=1,y=-1`; the other variables get 0. */
function parseSeed(inv: Invocation, names: readonly string[]): (ValueSpec | number)[] {
  const raw = inv.flags.get("seed");
  if (raw === undefined) return names.map((_, i) => (i === 0 ? 1 : 0));
  const known = `--at gives ${names.join(", ")}`;
  if (!raw.includes("=")) {
    const name = raw.trim();
    const i = names.indexOf(name);
    if (i < 0) throw new CliError(`--seed: '${name}' is not a variable (${known})`);
    return names.map((_, j) => (j === i ? 1 : 0));
  }
  const seed = parseAssignments(raw, "seed");
  const out: (ValueSpec | number)[] = names.map(() => 0);
  seed.names.forEach((n, k) => {
    const i = names.indexOf(n);
    if (i < 0) throw new CliError(`--seed: '${n}' is not a variable (${known})`);
    out[i] = seed.values[k]!;
  });
  return out;
}

/** Everything a command needs, fully checked except that values are not evaluated yet. */
function request(inv: Invocation): Request {
  const { command, positionals, flags } = inv;
  const format = parseFormat(inv);
  const digits = parseDigits(inv);
  if (positionals.length === 0)
    throw new CliError(`${command}: missing EXPR, e.g. adjoint ${command} "x * sin(x)" --at x=1`);
  if (positionals.length > 1)
    throw new CliError(
      `${command}: expected one expression, got ${positionals.length} arguments (quote the expression)`,
    );
  const source = positionals[0]!;
  const expr = parseExpression(source);
  const at = flags.get("at");
  if (at === undefined) {
    const used = variablesOf(expr);
    if (used.length > 0)
      throw new CliError(
        `${command}: missing --at; the expression uses ${used.join(", ")} (e.g. --at ${used.map((v) => `${v}=1`).join(",")})`,
      );
    throw new CliError(`${command}: missing --at: give the variables and their values, e.g. --at x=1`);
  }
  const { names, values } = parseAssignments(at, "at");
  checkExpression(expr, names);
  const seed = command === "explain" ? parseSeed(inv, names) : [];
  return { command, source, expr, names, values, seed, format, digits };
}

// ---------------------------------------------------------------------------------------------
// Entry point

function unknownCommand(c: string): CliError {
  return new CliError(`unknown command '${c}' (commands: ${Object.keys(COMMANDS).join(", ")}, train, help)`);
}

async function dispatch(argv: readonly string[]): Promise<string> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    const topic = first === "help" ? rest[0] : undefined;
    if (rest.length > (first === "help" ? 1 : 0))
      throw new CliError(`help takes at most one command, got ${rest.join(" ")}`);
    if (topic === undefined) return mainHelp();
    if (topic === "functions") return functionsHelp();
    if (topic === "train") return trainHelp();
    if (!isCommand(topic)) throw unknownCommand(topic);
    return commandHelp(topic);
  }
  if (first === "--version" || first === "-v") {
    if (rest.length > 0) throw new CliError(`${first} takes no arguments`);
    return version();
  }
  if (first.startsWith("-"))
    throw new CliError(`unknown option '${first}': give a command first (see adjoint --help)`);
  if (!isCommand(first)) throw unknownCommand(first);
  const dashDash = rest.indexOf("--");
  const opts = dashDash < 0 ? rest : rest.slice(0, dashDash);
  if (opts.includes("--help") || opts.includes("-h")) return commandHelp(first);
  const req = request(parseArgs(first, rest));
  // Only now load the differentiation library.
  const { runCommand } = await import("./commands.js");
  return runCommand(req);
}

/**
 * `adjoint train ...`: check the flags, then load the trainer. Progress goes to `io` while it
 * runs; the summary comes back as stdout.
 */
async function train(args: readonly string[], io: TrainIO | undefined): Promise<CliResult> {
  if (args.includes("--help") || args.includes("-h")) return { code: 0, stdout: trainHelp(), stderr: "" };
  const req = parseTrainArgs(args);
  const { runTrain } = await import("./train.js");
  return runTrain(req, io ?? (await (await import("./node-io.js")).nodeIO()));
}

/**
 * Run the `adjoint` command line on `argv` (the arguments after the program name) and return
 * the exit status and output instead of printing them. A `CliError` (a mistake in the input)
 * becomes one line `adjoint: ...` on stderr and status 2; any other failure status 1. Only
 * `train` writes while it runs (its progress, to `io`, by default the process's stdout) and
 * writes files.
 * @example
 * (await runCli(["grad", "x * x", "--at", "x=3"])).stdout; // "f(x) = x * x\nat x = 3\n\nf     = 9\ndf/dx = 6\n"
 */
export async function runCli(argv: readonly string[], io?: TrainIO): Promise<CliResult> {
  try {
    if (argv[0] === "train") return await train(argv.slice(1), io);
    return { code: 0, stdout: await dispatch(argv), stderr: "" };
  } catch (e) {
    if (e instanceof CliError) return { code: 2, stdout: "", stderr: `adjoint: ${oneLine(e.message)}\n` };
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { code: 1, stdout: "", stderr: `adjoint: internal error: ${oneLine(msg)}\n` };
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ");
}
