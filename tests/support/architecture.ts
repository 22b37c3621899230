import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** Violation is one import that crosses a boundary it must not cross. */
export interface Violation {
  /** The importing file, relative to the checked root, with `/` separators. */
  file: string;
  /** 1-based line of the import specifier. */
  line: number;
  /** The specifier as written (or the expression text of a non-literal dynamic import). */
  specifier: string;
  /** Which rule it breaks and what to do instead. */
  message: string;
}

/** The folders whose sources obey the boundary rules; everything else (tests, bench) is free. */
const CHECKED = ["modules", "outbox", "src"] as const;
const SOURCE = /\.(?:[cm]?[jt]s|[jt]sx)$/;
const EXTENSION = /\.(?:[cm]?[jt]s|[jt]sx)$/;
/** A module's public doors: its definition and its published events. */
const ENTRY_POINTS = new Set(["index", "events"]);
/** The one `src/` file modules may import: the platform's public API. */
const PLATFORM_API = "src/platform";
/** The composition root is the only platform file that may know the modules. */
const COMPOSITION_ROOT = "src/server";

/**
 * checkArchitecture scans `modules/`, `outbox/` and `src/` under `root` and reports every import
 * that breaks the module boundaries: a module reaching into another module other than through its
 * `index.ts` or `events.ts`, a module importing the platform other than through `src/platform.ts`,
 * and the platform (`src/`, `outbox/`) importing a module anywhere but in `src/server.ts`.
 * Static imports, `import type`, `export ... from`, `import x = require()`, `require()`,
 * `import("x")` types and dynamic `import()` all count; a dynamic import whose specifier is not a
 * string literal cannot be checked and is reported too.
 *
 * @example expect(checkArchitecture(process.cwd()).map(formatViolation)).toEqual([])
 */
export function checkArchitecture(root: string): Violation[] {
  const absRoot = resolve(root);
  const violations: Violation[] = [];
  for (const area of CHECKED) {
    for (const file of sourceFiles(join(absRoot, area))) {
      const rel = toPosix(relative(absRoot, file));
      for (const imp of importsOf(file)) {
        const message = imp.literal
          ? judge(absRoot, rel, file, imp.specifier)
          : "dynamic import() with a non-literal specifier cannot be checked; import a literal path";
        if (message) violations.push({ file: rel, line: imp.line, specifier: imp.specifier, message });
      }
    }
  }
  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

/** formatViolation renders a violation as `file:line: "specifier" message`, the shape editors link. */
export function formatViolation(v: Violation): string {
  return `${v.file}:${v.line}: "${v.specifier}" ${v.message}`;
}

/** ImportEdge is one value import inside the checked folders: `file` imports `target` at `line`. */
export interface ImportEdge {
  file: string;
  line: number;
  specifier: string;
  target: string;
}

/**
 * findImportCycles reports the import cycles among `modules/`, `outbox/` and `src/` under
 * `root`: one shortest cycle per strongly connected group of files, each as the chain of its
 * import edges, starting from the group's first file by name.
 *
 * Only value imports count (static `import`, `export ... from`, `import x = require()`,
 * `require()`). A cycle of those makes evaluation order depend on which file is loaded first, so a
 * binding read at load time can be undefined or in its temporal dead zone. `import type` and
 * `export type` declarations are erased before anything runs (`verbatimModuleSyntax` guarantees
 * it), and a dynamic `import()` resolves once both sides have loaded, so neither can cause that;
 * an `import { type X }` is not erased under `verbatimModuleSyntax` (it becomes `import {}`) and
 * counts.
 *
 * @example expect(findImportCycles(process.cwd()).map(formatCycle)).toEqual([])
 */
export function findImportCycles(root: string): ImportEdge[][] {
  const absRoot = resolve(root);
  const graph = new Map<string, ImportEdge[]>();
  for (const area of CHECKED) {
    for (const file of sourceFiles(join(absRoot, area))) {
      const rel = toPosix(relative(absRoot, file));
      const edges: ImportEdge[] = [];
      for (const imp of importsOf(file)) {
        if (!imp.literal || imp.kind !== "value") continue;
        const target = resolveSourceFile(absRoot, file, imp.specifier);
        if (target) edges.push({ file: rel, line: imp.line, specifier: imp.specifier, target });
      }
      graph.set(rel, edges);
    }
  }
  return stronglyConnected(graph)
    .filter((group) => group.length > 1 || graph.get(group[0]!)!.some((e) => e.target === group[0]))
    .map((group) => shortestCycle(graph, group.sort()[0]!, new Set(group)))
    .sort((a, b) => a[0]!.file.localeCompare(b[0]!.file));
}

/** formatCycle renders a cycle as `a.ts:3 → b.ts:7 → a.ts`, each arrow an import at that line. */
export function formatCycle(cycle: ImportEdge[]): string {
  return [...cycle.map((e) => `${e.file}:${e.line}`), cycle[0]!.file].join(" → ");
}

/** resolveSourceFile maps a specifier to a checked source file (root-relative), or undefined. */
function resolveSourceFile(root: string, fromAbs: string, specifier: string): string | undefined {
  const target = resolveTarget(root, fromAbs, specifier);
  if (target === undefined) return undefined;
  const candidates = [target, target.replace(/\.[cm]?js$/, ".ts"), target.replace(/\.jsx$/, ".tsx"), `${target}.ts`, `${target}.tsx`, join(target, "index.ts")];
  const found = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  if (!found) return undefined;
  const rel = toPosix(relative(root, found));
  return (CHECKED as readonly string[]).includes(rel.split("/")[0]!) ? rel : undefined;
}

/** stronglyConnected is Tarjan's algorithm, iterative so a long import chain cannot overflow the stack. */
function stronglyConnected(graph: Map<string, ImportEdge[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; edge: number }[] = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++]!.target;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const group: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          group.push(member);
        } while (member !== frame.node);
        groups.push(group);
      }
    }
  }
  return groups;
}

/** shortestCycle finds, breadth first within one group, the shortest import chain from `start` back to it. */
function shortestCycle(graph: Map<string, ImportEdge[]>, start: string, group: Set<string>): ImportEdge[] {
  const via = new Map<string, ImportEdge>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const edge of graph.get(queue[i]!) ?? []) {
      if (!group.has(edge.target)) continue;
      if (edge.target === start) {
        const chain = [edge];
        while (chain[0]!.file !== start) chain.unshift(via.get(chain[0]!.file)!);
        return chain;
      }
      if (via.has(edge.target)) continue;
      via.set(edge.target, edge);
      queue.push(edge.target);
    }
  }
  throw new Error(`no cycle through ${start}`); // unreachable: every file of a group is on a cycle
}

interface FoundImport {
  specifier: string;
  line: number;
  literal: boolean;
  /**
   * `value`: a static import or re-export that runs the target first; `type`: an `import type`
   * or `export type` declaration (erased, nothing runs); `lazy`: a dynamic `import()`, a
   * `require()` call or an `import("x")` type, resolved only when reached.
   */
  kind: "value" | "type" | "lazy";
}

/** judge returns why importing `specifier` from `fromRel` is forbidden, or undefined when it is fine. */
function judge(root: string, fromRel: string, fromAbs: string, specifier: string): string | undefined {
  const target = resolveTarget(root, fromAbs, specifier);
  if (target === undefined) return undefined; // a package
  const rel = toPosix(relative(root, target));
  if (rel.startsWith("../") || isAbsolute(rel)) return undefined; // outside the project
  const from = fromRel.split("/");
  const to = withoutExtension(rel).split("/");
  const fromArea = from[0];
  const toArea = to[0];

  if (fromArea === "modules") {
    const ownModule = from[1];
    if (toArea === "modules") {
      if (to[1] === ownModule) return undefined;
      // `modules/x` (a folder import) resolves to its index; `modules/x/index|events` are the doors.
      const isDoor = to.length === 2 || (to.length === 3 && ENTRY_POINTS.has(to[2]!));
      return isDoor ? undefined : `reaches into module "${to[1]}"; import modules/${to[1]}/index.ts or modules/${to[1]}/events.ts instead`;
    }
    if (toArea === "src" || toArea === "outbox") {
      return to.join("/") === PLATFORM_API ? undefined : `imports the platform directly; modules import only src/platform.ts`;
    }
    return undefined;
  }
  // outbox/ and src/: only the composition root may know the modules.
  if (toArea === "modules" && withoutExtension(fromRel) !== COMPOSITION_ROOT) {
    return `the platform imports a module; only ${COMPOSITION_ROOT}.ts (the composition root) may`;
  }
  return undefined;
}

/**
 * resolveTarget maps a specifier to an absolute path inside or outside `root`, or undefined for a
 * package. Bare specifiers that start with a checked folder (`modules/x/...`, `src/...`) count as
 * root-relative, so a future `paths`/`baseUrl` alias cannot sneak past the check.
 */
function resolveTarget(root: string, fromAbs: string, specifier: string): string | undefined {
  let path: string;
  if (specifier.startsWith("file:")) path = fileURLToPath(specifier);
  else if (specifier.startsWith("./") || specifier.startsWith("../") || specifier === "." || specifier === "..") path = resolve(dirname(fromAbs), specifier);
  else if (isAbsolute(specifier)) path = resolve(specifier);
  else {
    const first = specifier.replace(/^[@~#]\//, "").split("/")[0];
    if (!(CHECKED as readonly string[]).includes(first ?? "")) return undefined;
    path = resolve(root, specifier.replace(/^[@~#]\//, ""));
  }
  // A folder import resolves to the folder's index file.
  if (!EXTENSION.test(path) && existsSync(path) && statSync(path).isDirectory()) return join(path, "index.ts");
  return path;
}

function withoutExtension(p: string): string {
  return p.replace(EXTENSION, "");
}

function toPosix(p: string): string {
  return sep === "/" ? p : p.split(sep).join("/");
}

function* sourceFiles(dir: string): Generator<string> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (entry.isFile() && SOURCE.test(entry.name)) yield full;
  }
}

/**
 * importsOf parses a file with the TypeScript parser (not a regex: comments, strings and
 * multi-line imports are handled exactly as the compiler sees them) and lists every import.
 */
function importsOf(file: string): FoundImport[] {
  const text = readFileSync(file, "utf8");
  const kind = extname(file).endsWith("x") ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const found: FoundImport[] = [];
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const add = (node: ts.Expression | undefined, kind: FoundImport["kind"]) => {
    if (!node) return;
    if (ts.isStringLiteralLike(node)) found.push({ specifier: node.text, line: lineOf(node), literal: true, kind });
    else found.push({ specifier: node.getText(source), line: lineOf(node), literal: false, kind });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly ? "type" : "value");
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly ? "type" : "value");
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      add(node.moduleReference.expression, node.isTypeOnly ? "type" : "value");
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, "lazy");
    else if (ts.isCallExpression(node)) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require" && node.arguments.length === 1;
      // A require() runs its target when reached, usually at load: count it as a value import.
      if (isDynamicImport || isRequire) add(node.arguments[0], isRequire ? "value" : "lazy");
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}
