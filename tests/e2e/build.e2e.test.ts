import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { accessSync, constants, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { freePort, killAll, ROOT, spawnApp } from "../support/process.ts";

const BINARY = join(ROOT, "dist/server");

let tdb: TestDatabase;
// The binary runs from an empty directory: it may rely on nothing from the checkout but the
// migrations it is pointed at (no src/, no node_modules/).
let elsewhere: string;

beforeAll(async () => {
  elsewhere = mkdtempSync(join(tmpdir(), "binary-cwd-"));
  tdb = await createTestDatabase();
});

afterAll(async () => {
  await killAll();
  await tdb?.drop();
  rmSync(elsewhere, { recursive: true, force: true });
});

describe("bun run build", () => {
  it("compiles a single executable at dist/server", async () => {
    const build = Bun.spawn(["bun", "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [code, out, err] = await Promise.all([build.exited, new Response(build.stdout).text(), new Response(build.stderr).text()]);
    expect({ code, output: `${out}\n${err}` }).toMatchObject({ code: 0 });
    expect(statSync(BINARY).isFile()).toBe(true);
    accessSync(BINARY, constants.X_OK);
  }, 60_000);

  it("serves /health and the embedded /docs assets with DATABASE_URL and MIGRATIONS_DIR", async () => {
    const app = spawnApp([BINARY], { DATABASE_URL: tdb.url, MIGRATIONS_DIR: join(ROOT, "migrations") }, await freePort(), { cwd: elsewhere });
    await app.ready("/health");
    expect(await (await fetch(`${app.url}/health`)).json()).toEqual({ status: "ok" });
    expect((await fetch(`${app.url}/ready`)).status).toBe(200);

    const page = await fetch(`${app.url}/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="swagger-ui">');
    // Swagger UI's own files are compiled into the binary (text imports), not read from disk.
    const bundle = await fetch(`${app.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
    const css = await fetch(`${app.url}/docs/swagger-ui.css`);
    expect(css.status).toBe(200);
    expect(await css.text()).toContain(".swagger-ui");

    expect(await app.stop("SIGTERM")).toBe(0);
  });

  it("refuses to start without DATABASE_URL, saying embedded Postgres is not in the binary", async () => {
    const app = spawnApp([BINARY], { DATABASE_URL: undefined, EMBEDDED_PG_DIR: join(elsewhere, "pg") }, await freePort(), { cwd: elsewhere });
    const code = await Promise.race([app.proc.exited, Bun.sleep(15_000).then(() => "still running" as const)]);
    expect(code).toBe(1);
    expect(app.output()).toContain("Embedded Postgres is not available in this build");
    expect(app.output()).toContain("Set DATABASE_URL");
  });
});
