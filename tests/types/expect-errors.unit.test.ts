import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import ts from "typescript";

// `tsc` fails on an `@ts-expect-error` with no error under it, but any error will do: a typo in
// the test would satisfy the directive as well as the mistake it is meant to show. This test
// compiles the type-level tests with the directives removed and checks that each marked line
// reports the error code its directive names (`// @ts-expect-error TS2322 why`), and that no
// other line reports anything.
const FILE = resolve(import.meta.dir, "events.typecheck.ts");
const DIRECTIVE = /\/\/ @ts-expect-error (TS(\d+))\b/;

function compileWithoutDirectives(file: string): { expected: Map<number, number>; actual: Map<number, number[]> } {
  const text = readFileSync(file, "utf8");
  const expected = new Map<number, number>();
  const lines = text.split("\n").map((line, i) => {
    const m = DIRECTIVE.exec(line);
    if (!m) return line;
    expected.set(i + 1, Number(m[2])); // the directive covers the next line (0-based i + 1)
    return line.replace("@ts-expect-error", "(directive removed)");
  });
  const config = ts.getParsedCommandLineOfConfigFile(
    resolve(import.meta.dir, "../../tsconfig.json"),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
  );
  if (!config) throw new Error("cannot read tsconfig.json");
  const host = ts.createCompilerHost(config.options);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (resolve(name) === file ? lines.join("\n") : readFile(name));
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, fresh) =>
    resolve(name) === file ? ts.createSourceFile(name, lines.join("\n"), lang) : getSourceFile(name, lang, onError, fresh);
  const program = ts.createProgram([file], config.options, host);
  const source = program.getSourceFile(file)!;
  const actual = new Map<number, number[]>();
  for (const d of ts.getPreEmitDiagnostics(program, source)) {
    if (d.file?.fileName !== source.fileName || d.start === undefined) continue;
    const line = d.file.getLineAndCharacterOfPosition(d.start).line; // 0-based: the directive's line number
    actual.set(line, [...(actual.get(line) ?? []), d.code]);
  }
  return { expected, actual };
}

describe("type-level tests", () => {
  it("each @ts-expect-error line fails with the error its directive names, and no other line fails", () => {
    const { expected, actual } = compileWithoutDirectives(FILE);
    expect(expected.size).toBeGreaterThan(15);
    // Keyed by the line after the directive (0-based index of the directive + 1 = next line, 0-based).
    const want = Object.fromEntries([...expected].map(([line, code]) => [line, [code]]));
    const got = Object.fromEntries([...actual].map(([line, codes]) => [line, codes]));
    expect(got).toEqual(want);
  }, 120_000);
});
