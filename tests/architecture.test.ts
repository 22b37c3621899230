import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { checkArchitecture, findImportCycles, formatCycle, formatViolation, type Violation } from "./support/architecture.ts";

// The checker is only worth something if it fails: every rule is proven on planted violations in a
// throw-away tree before the real repository is held to it.
const fixtures: string[] = [];
afterAll(() => {
  for (const dir of fixtures) rmSync(dir, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "arch-"));
  fixtures.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const pick = (vs: Violation[]) => vs.map(({ file, line, specifier }) => ({ file, line, specifier }));

// A well-behaved module `b` for the planted violations to reach into.
const moduleB = {
  "modules/b/index.ts": `export const b = 1;\n`,
  "modules/b/events.ts": `export const BEvent = "b.happened";\n`,
  "modules/b/schema.ts": `export const table = {};\n`,
  "src/platform.ts": `export const platform = 1;\n`,
  "src/config.ts": `export const config = 1;\n`,
  "src/server.ts": `import { b } from "../modules/b/index.ts";\nexport const server = b;\n`,
};

describe("architecture checker", () => {
  it("reports a module importing another module's private file, with file and line", () => {
    const root = tree({ ...moduleB, "modules/a/index.ts": `// module a\nimport { table } from "../b/schema.ts";\nexport const a = table;\n` });
    const violations = checkArchitecture(root);
    expect(pick(violations)).toEqual([{ file: "modules/a/index.ts", line: 2, specifier: "../b/schema.ts" }]);
    expect(formatViolation(violations[0]!)).toStartWith(`modules/a/index.ts:2: "../b/schema.ts" reaches into module "b"`);
  });

  it("catches every import form: type-only, re-export, dynamic, multi-line, absolute, extensionless", () => {
    const root = tree({ ...moduleB });
    mkdirSync(join(root, "modules/a"), { recursive: true });
    writeFileSync(
      join(root, "modules/a/commands.ts"),
      [
        `import type { table } from "../b/schema.ts";`,
        `export { table as t } from "../b/schema";`,
        `export * from "../b/schema.js";`,
        `const lazy = () => import("../b/schema.ts");`,
        `import {`,
        `  table as x,`,
        `} from "${join(root, "modules/b/schema.ts")}";`,
        `type T = typeof import("../b/schema.ts");`,
        `// import { nope } from "../b/schema.ts"; (a comment, not an import)`,
        `const s = 'import { nope } from "../b/schema.ts"';`,
      ].join("\n"),
    );
    const lines = checkArchitecture(root)
      .filter((v) => v.file === "modules/a/commands.ts")
      .map((v) => v.line);
    expect(lines).toEqual([1, 2, 3, 4, 7, 8]);
  });

  it("lets modules use each other's index.ts and events.ts (also as a folder import) and their own files", () => {
    const root = tree({
      ...moduleB,
      "modules/a/index.ts": [
        `import { b } from "../b/index.ts";`,
        `import { BEvent } from "../b/events.ts";`,
        `import * as folder from "../b";`,
        `import { own } from "./schema.ts";`,
        `import { platform } from "../../src/platform.ts";`,
        `import { z } from "zod";`,
        `export const a = [b, BEvent, folder, own, platform, z];`,
      ].join("\n"),
      "modules/a/schema.ts": `export const own = 1;\n`,
      "modules/a/deep/nested.ts": `export { BEvent } from "../../b/events.ts";\n`,
    });
    expect(checkArchitecture(root)).toEqual([]);
  });

  it("reports a module importing src/ or outbox/ other than src/platform.ts", () => {
    const root = tree({
      ...moduleB,
      "modules/a/index.ts": `import { config } from "../../src/config.ts";\nimport "../../outbox/store.ts";\nexport const a = config;\n`,
    });
    expect(pick(checkArchitecture(root))).toEqual([
      { file: "modules/a/index.ts", line: 1, specifier: "../../src/config.ts" },
      { file: "modules/a/index.ts", line: 2, specifier: "../../outbox/store.ts" },
    ]);
  });

  it("reports src/ and outbox/ importing modules anywhere but the composition root", () => {
    const root = tree({
      ...moduleB,
      "src/http/app.ts": `import { b } from "../../modules/b/index.ts";\nexport const app = b;\n`,
      "outbox/worker.ts": `export const w = async () => (await import("../modules/b/events.ts")).BEvent;\n`,
      "src/loader.ts": `export const load = (name: string) => import(\`../modules/\${name}/index.ts\`);\n`,
    });
    expect(checkArchitecture(root).map(formatViolation)).toEqual([
      `outbox/worker.ts:1: "../modules/b/events.ts" the platform imports a module; only src/server.ts (the composition root) may`,
      `src/http/app.ts:1: "../../modules/b/index.ts" the platform imports a module; only src/server.ts (the composition root) may`,
      `src/loader.ts:1: "\`../modules/\${name}/index.ts\`" dynamic import() with a non-literal specifier cannot be checked; import a literal path`,
    ]);
  });
});

describe("import cycle checker", () => {
  it("reports a two-file cycle with the line of each import", () => {
    const root = tree({
      "outbox/a.ts": `import { b } from "./b.ts";\nexport const a = () => b;\n`,
      "outbox/b.ts": `// b\nimport { a } from "./a.ts";\nexport const b = () => a;\n`,
    });
    expect(findImportCycles(root).map(formatCycle)).toEqual(["outbox/a.ts:1 → outbox/b.ts:2 → outbox/a.ts"]);
  });

  it("reports a cycle across folders through re-exports, extensionless and folder imports, once per tangle", () => {
    const root = tree({
      "src/platform.ts": `export { config } from "./config";\n`,
      "src/config.ts": `import { w } from "../outbox";\nexport const config = w;\n`,
      "outbox/index.ts": `export * from "./worker.js";\n`,
      "outbox/worker.ts": `import { config } from "../src/platform.ts";\nexport const w = () => config;\n`,
      "modules/m/index.ts": `import { config } from "../../src/platform.ts";\nexport const m = config;\n`,
      "src/self.ts": `import { me } from "./self.ts";\nexport const me = () => me;\n`,
    });
    expect(findImportCycles(root).map(formatCycle)).toEqual([
      "outbox/index.ts:1 → outbox/worker.ts:1 → src/platform.ts:1 → src/config.ts:1 → outbox/index.ts",
      "src/self.ts:1 → src/self.ts",
    ]);
  });

  it("counts inline type specifiers but not import type, export type or dynamic import()", () => {
    const root = tree({
      "src/a.ts": `import type { B } from "./b.ts";\nexport type { C } from "./c.ts";\nexport const a = () => import("./b.ts");\nexport type A = B;\n`,
      "src/b.ts": `import { a } from "./a.ts";\nexport type B = typeof a;\n`,
      "src/c.ts": `import { type D } from "./d.ts";\nexport type C = D;\n`,
      "src/d.ts": `import { c } from "./c-value.ts";\nexport type D = string;\nexport const d = c;\n`,
      "src/c-value.ts": `import { type D } from "./d.ts";\nexport const c: D = "x";\n`,
    });
    expect(findImportCycles(root).map(formatCycle)).toEqual(["src/c-value.ts:1 → src/d.ts:1 → src/c-value.ts"]);
  });
});

describe("this repository", () => {
  it("has no boundary violations", () => {
    // Printed in full so a failure says exactly which import to change.
    expect(checkArchitecture(join(import.meta.dir, "..")).map(formatViolation)).toEqual([]);
  });

  it("has no import cycles", () => {
    expect(findImportCycles(join(import.meta.dir, "..")).map(formatCycle)).toEqual([]);
  });
});
