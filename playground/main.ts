/**
 * @file The playground page: reads the expression, the point and the mode from the controls,
 * computes everything with `model.ts`, and renders the results, the graph, the plot and the
 * trace tables. Any mistake in the input is shown inline next to the control it concerns and
 * the last good results stay on screen, dimmed; nothing the user types can break the page.
 *
 * State for tests and tools: `body[data-state]` is "ready" or "error" after every update and
 * `body[data-renders]` counts the updates; the graph's `svg[data-animation]` is "done" once
 * the flow animation has finished.
 */

import { FUNCTION_SPECS } from "../dist/cli/whitelist.js";
import { animateFlow, type Mode, renderGraph, stopAnimations } from "./graph-view.js";
import { evaluate, graphOf, InputError, type Problem, parseProblem, sampleAlong } from "./model.js";
import { renderPlot } from "./plot-view.js";
import { fmt } from "./svg.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const exprInput = $<HTMLInputElement>("expr");
const exprError = $("expr-error");
const grouped = $("grouped");
const signature = $("signature");
const varsBox = $("vars");
const seedSelect = $<HTMLSelectElement>("seed");
const seedLabel = $("seed-label");
const modeNote = $("mode-note");
const axisSelect = $<HTMLSelectElement>("axis");
const rangeLo = $<HTMLInputElement>("range-lo");
const rangeHi = $<HTMLInputElement>("range-hi");
const rangeError = $("range-error");
const results = $("results");
const graphHost = $("graph");
const plotHost = $("plot");
const tables = $("tables");
const modeButtons = [...document.querySelectorAll<HTMLButtonElement>(".segmented button")];

/** What the controls hold. */
const state = {
  mode: "forward" as Mode,
  /** Values typed for each variable name (kept when the expression changes). */
  values: new Map<string, string>(),
  seed: "",
  axis: "",
};
let renders = 0;

// ---------------------------------------------------------------------------------------------
// Input: the expression and the point
// ---------------------------------------------------------------------------------------------

/** Default value of the i-th variable: 1, 2, 3, ... (the textbook example uses x1 = 1, x2 = 2). */
const defaultValue = (i: number): string => String(i + 1);

/** Rebuild the point's inputs when the set of variables changes. */
function syncVariables(names: readonly string[]): void {
  const current = [...varsBox.querySelectorAll<HTMLInputElement>("input")].map((i) => i.dataset.var);
  if (current.join("\u0000") !== names.join("\u0000")) {
    varsBox.replaceChildren(
      ...names.map((name, i) => {
        if (!state.values.has(name)) state.values.set(name, defaultValue(i));
        const row = document.createElement("label");
        row.className = "var";
        const tag = document.createElement("span");
        tag.className = "var-name";
        tag.textContent = name;
        const input = document.createElement("input");
        input.type = "number";
        input.step = "any";
        input.value = state.values.get(name)!;
        input.dataset.var = name;
        input.setAttribute("aria-label", `value of ${name}`);
        input.addEventListener("input", () => {
          state.values.set(name, input.value);
          update();
        });
        const err = document.createElement("span");
        err.className = "inline-error";
        err.setAttribute("role", "alert");
        err.hidden = true;
        row.append(tag, input, err);
        return row;
      }),
    );
    if (names.length === 0) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = "No variables: the expression is a constant.";
      varsBox.append(p);
    }
  }
  signature.textContent = names.join(", ");
  fillSelect(seedSelect, names, state.seed);
  fillSelect(axisSelect, names, state.axis);
  state.seed = seedSelect.value;
  state.axis = axisSelect.value;
}

function fillSelect(sel: HTMLSelectElement, names: readonly string[], keep: string): void {
  if ([...sel.options].map((o) => o.value).join("\u0000") !== names.join("\u0000")) {
    sel.replaceChildren(...names.map((n) => new Option(n, n)));
  }
  sel.value = names.includes(keep) ? keep : (names[0] ?? "");
  sel.disabled = names.length === 0;
}

/** The point as numbers; marks each bad field and returns null if any is bad. */
function readPoint(names: readonly string[]): number[] | null {
  let ok = true;
  const point = names.map((name) => {
    const input = varsBox.querySelector<HTMLInputElement>(`input[data-var="${name}"]`)!;
    const err = input.parentElement!.querySelector<HTMLElement>(".inline-error")!;
    const text = input.value.trim();
    const v = Number(text);
    const bad = text === "" || !Number.isFinite(v);
    input.classList.toggle("invalid", bad);
    input.setAttribute("aria-invalid", String(bad));
    err.hidden = !bad;
    err.textContent = bad ? "enter a finite number" : "";
    if (bad) ok = false;
    return v;
  });
  return ok ? point : null;
}

/** Show an expression error with the column it points at. */
function showExprError(e: InputError | null, source: string): void {
  exprInput.classList.toggle("invalid", e !== null);
  exprInput.setAttribute("aria-invalid", String(e !== null));
  exprError.hidden = e === null;
  exprError.replaceChildren();
  if (e === null) return;
  const msg = document.createElement("div");
  msg.className = "error-message";
  msg.textContent = e.message;
  exprError.append(msg);
  if (e.column !== undefined && source.length > 0) {
    const at = Math.min(e.column - 1, source.length);
    const code = document.createElement("code");
    code.className = "error-where";
    const mark = document.createElement("mark");
    mark.textContent = source.slice(at, at + 1) || " ";
    code.append(source.slice(0, at), mark, source.slice(at + 1));
    exprError.append(code);
  }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

function renderResults(
  p: Problem,
  point: readonly number[],
  value: number,
  gradient: readonly number[],
): void {
  const rows: [string, string, number, string | null][] = [
    [`f(${point.map((v) => fmt(v)).join(", ")})`, "value", value, null],
    ...p.names.map((n, i): [string, string, number, string | null] => [
      `∂f/∂${n}`,
      "gradient",
      gradient[i]!,
      n,
    ]),
  ];
  results.replaceChildren(
    ...rows.flatMap(([label, kind, v, name]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.className = kind;
      dd.dataset.value = String(v);
      if (name !== null) dd.dataset.var = name;
      dd.textContent = fmt(v);
      return [dt, dd];
    }),
  );
  if (p.names.length > 0) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "Gradient by reverse mode (one backward pass), in float64.";
    results.append(note);
  }
}

function renderModeNote(p: Problem): void {
  modeButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === state.mode)));
  seedLabel.hidden = state.mode !== "forward" || p.names.length === 0;
  document.body.dataset.mode = state.mode;
  modeNote.textContent =
    p.names.length === 0
      ? ""
      : state.mode === "forward"
        ? `Forward mode carries a tangent v̇ with every value, left to right; seeding ${state.seed} gives ∂f/∂${state.seed} at the output in one pass.`
        : "Reverse mode first computes every value, then sweeps adjoints v̄ = ∂f/∂v from the output back to the inputs: the whole gradient in one backward pass.";
}

let animationRun = 0;

/** Draw the graph for the current mode; animate when asked (mode switch, replay). */
async function drawGraph(graph: ReturnType<typeof graphOf>, animate: boolean): Promise<void> {
  if (graph.nodes.length === 0) {
    const empty = document.createElement("p");
    empty.className = "note";
    empty.textContent = "A constant has no computational graph.";
    graphHost.replaceChildren(empty);
    return;
  }
  const root = renderGraph(graphHost, graph, state.mode);
  root.dataset.animation = animate ? "running" : "done";
  if (!animate) return;
  const run = ++animationRun;
  await animateFlow(root, graph, state.mode);
  if (run === animationRun) root.dataset.animation = "done";
}

/** The current problem and graph, for replays and mode switches without recomputing. */
let last: { p: Problem; graph: ReturnType<typeof graphOf> } | null = null;

function setStale(stale: boolean): void {
  for (const el of [results, graphHost, plotHost, tables]) el.classList.toggle("stale", stale);
}

/** Recompute and redraw everything from the controls. */
function update(animate = false): void {
  const source = exprInput.value;
  try {
    let p: Problem;
    try {
      p = parseProblem(source);
      showExprError(null, source);
    } catch (e) {
      if (e instanceof InputError) {
        showExprError(e, source);
        grouped.textContent = "";
        fail();
        return;
      }
      throw e;
    }
    syncVariables(p.names);
    grouped.textContent = p.names.length > 0 || p.grouped !== source.trim() ? `parsed as ${p.grouped}` : "";
    const point = readPoint(p.names);
    if (point === null) {
      fail();
      return;
    }
    const seed = Math.max(0, p.names.indexOf(state.seed));
    const ev = evaluate(p, point, seed);
    renderResults(p, point, ev.value, ev.gradient);
    renderModeNote(p);
    const graph = graphOf(ev.explanation);
    last = { p, graph };
    void drawGraph(graph, animate);
    tables.innerHTML = ev.explanation.toHTML(); // adjoint escapes every cell
    drawPlot(p, point, ev.value, ev.gradient);
    saveHash(p, point);
    setStale(false);
    document.body.dataset.state = "ready";
  } catch (e) {
    // An error from the library (a domain it rejects, a bug) is shown like an input error.
    showExprError(new InputError(e instanceof Error ? e.message : String(e)), source);
    fail();
  } finally {
    document.body.dataset.renders = String(++renders);
  }
}

function fail(): void {
  setStale(true);
  document.body.dataset.state = "error";
}

function drawPlot(p: Problem, point: readonly number[], value: number, gradient: readonly number[]): void {
  if (p.names.length === 0) {
    plotHost.replaceChildren();
    return;
  }
  const axis = Math.max(0, p.names.indexOf(state.axis));
  const at = point[axis]!;
  const lo = rangeLo.value.trim() === "" ? at - 4 : Number(rangeLo.value);
  const hi = rangeHi.value.trim() === "" ? at + 4 : Number(rangeHi.value);
  try {
    const s = sampleAlong(p, point, axis, lo, hi);
    rangeError.hidden = true;
    renderPlot(plotHost, s, { variable: p.names[axis]!, at, value, slope: gradient[axis]! });
  } catch (e) {
    rangeError.hidden = false;
    rangeError.textContent = e instanceof Error ? e.message : String(e);
    plotHost.classList.add("stale");
  }
}

// ---------------------------------------------------------------------------------------------
// The URL keeps the expression, the point and the mode, so a state can be shared
// ---------------------------------------------------------------------------------------------

function saveHash(p: Problem, point: readonly number[]): void {
  const q = new URLSearchParams({ f: p.source });
  p.names.forEach((n, i) => q.set(n, String(point[i])));
  q.set("mode", state.mode);
  history.replaceState(null, "", `#${q.toString()}`);
}

function loadHash(): void {
  const q = new URLSearchParams(location.hash.slice(1));
  const f = q.get("f");
  if (f !== null) exprInput.value = f;
  for (const [k, v] of q) if (k !== "f" && k !== "mode") state.values.set(k, v);
  const mode = q.get("mode");
  if (mode === "forward" || mode === "reverse") state.mode = mode;
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

function setMode(mode: Mode): void {
  if (last === null) {
    state.mode = mode;
    update();
    return;
  }
  state.mode = mode;
  renderModeNote(last.p);
  const old = graphHost.querySelector("svg");
  if (old !== null) stopAnimations(old);
  void drawGraph(last.graph, true);
}

exprInput.addEventListener("input", () => update());
seedSelect.addEventListener("change", () => {
  state.seed = seedSelect.value;
  update(true);
});
axisSelect.addEventListener("change", () => {
  state.axis = axisSelect.value;
  rangeLo.value = "";
  rangeHi.value = "";
  update();
});
rangeLo.addEventListener("input", () => update());
rangeHi.addEventListener("input", () => update());
for (const b of modeButtons) b.addEventListener("click", () => setMode(b.dataset.mode as Mode));
$("replay").addEventListener("click", () => setMode(state.mode));

const chips = $("function-list");
for (const [name, spec] of Object.entries(FUNCTION_SPECS)) {
  const chip = document.createElement("button");
  chip.type = "button";
  chip.className = "chip";
  const args = "args" in spec ? spec.args : spec.arity === 1 ? "x" : "x, y";
  chip.textContent = name;
  chip.title = `${name}(${args}): ${spec.doc}`;
  // Clicking a chip inserts a call at the cursor.
  chip.addEventListener("click", () => {
    const start = exprInput.selectionStart ?? exprInput.value.length;
    const end = exprInput.selectionEnd ?? start;
    const selected = exprInput.value.slice(start, end);
    exprInput.setRangeText(`${name}(${selected})`, start, end, "end");
    if (selected === "") exprInput.setSelectionRange(start + name.length + 1, start + name.length + 1);
    exprInput.focus();
    update();
  });
  chips.append(chip);
}

addEventListener("error", (ev) => {
  showExprError(new InputError(`Unexpected error: ${ev.message}`), exprInput.value);
  fail();
});

loadHash();
update(true);
