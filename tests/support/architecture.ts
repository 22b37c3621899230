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
        const message = imp.literal ? judge(absRoot, rel, file, imp.specifier) : "dynamic import() with a non-literal specifier cannot be checked; import a literal path";
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

interface FoundImport {
  specifier: string;
  line: number;
  literal: boolean;
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
  const add = (node: ts.Expression | undefined) => {
    if (!node) return;
    if (ts.isStringLiteralLike(node)) found.push({ specifier: node.text, line: lineOf(node), literal: true });
    else found.push({ specifier: node.getText(source), line: lineOf(node), literal: false });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression);
    else if (ts.isCallExpression(node)) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require" && node.arguments.length === 1;
      if (isDynamicImport || isRequire) add(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}
