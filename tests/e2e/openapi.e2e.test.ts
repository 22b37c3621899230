import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { existsSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { type Browser, chromium } from "playwright-core";
import { startTestServer, type TestServer } from "../support/server.ts";

// Chromium comes from apt (`.ci/run` installs it); these flags keep it from phoning home, so any
// request outside the server's origin that the test sees comes from the page itself.
const CHROMIUM = "/usr/bin/chromium";
// Swagger UI behaves differently for localhost/127.0.0.1 (it skips its online validator badge),
// so the page is browsed under a made-up public-looking name that Chromium maps to the server.
const DOCS_HOST = "docs.example.test";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  `--host-resolver-rules=MAP ${DOCS_HOST} 127.0.0.1`,
];
const METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

interface Operation {
  security?: unknown;
  responses?: Record<string, { content?: Record<string, unknown> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string };
  paths: Record<string, Record<string, Operation>>;
}

let server: TestServer;
let origin: string;
let docsOrigin: string;
let doc: OpenApiDocument;

beforeAll(async () => {
  server = await startTestServer({ ROLES: "api" });
  const port = server.listen();
  origin = `http://127.0.0.1:${port}`;
  docsOrigin = `http://${DOCS_HOST}:${port}`;
  const res = await fetch(`${origin}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDocument;
});

afterAll(async () => {
  await server?.close();
});

function operations(): { method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths)
    .filter(([path]) => path.startsWith("/api/v1/"))
    .flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.has(method))
        .map(([method, op]) => ({ method, path, op })),
    );
}

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toStartWith("3.1");
  });

  it("has every /api/v1 operation declare its security and at least one 4xx problem response", () => {
    const ops = operations();
    expect(ops.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toContain("POST /api/v1/users");
    // Collected, not asserted one by one, so a failure lists every offending operation.
    const offenders = ops.flatMap(({ method, path, op }) => {
      const name = `${method.toUpperCase()} ${path}`;
      const problems: string[] = [];
      if (!Array.isArray(op.security)) problems.push(`${name}: no security (use [] for a public route)`);
      const has4xxProblem = Object.entries(op.responses ?? {}).some(
        ([code, r]) => /^4(\d\d|XX)$/.test(code) && r.content?.["application/problem+json"] !== undefined,
      );
      if (!has4xxProblem) problems.push(`${name}: no 4xx application/problem+json response`);
      return problems;
    });
    expect(offenders).toEqual([]);
  });
});

describe("/docs", () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it("renders Swagger UI with the API title and operations, loading nothing from outside the server", async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    const requested: string[] = [];
    const errors: string[] = [];
    page.on("request", (req) => requested.push(req.url()));
    page.on("pageerror", (err) => errors.push(err.message));

    const res = await page.goto(`${docsOrigin}/docs`, { waitUntil: "load" });
    expect(res?.status()).toBe(200);
    await page.locator(".swagger-ui .info .title").filter({ hasText: doc.info.title }).waitFor({ timeout: 10_000 });
    const register = page.locator('.opblock-post .opblock-summary-path[data-path="/api/v1/users"]');
    await register.waitFor({ timeout: 10_000 });
    expect(await page.locator(".opblock").count()).toBeGreaterThanOrEqual(operations().length);

    // Inline data: and blob: URLs never leave the page; everything else must be this server.
    const foreign = requested.filter((u) => !/^(data|blob):/.test(u) && new URL(u).origin !== docsOrigin);
    expect(foreign).toEqual([]);
    expect(requested).toContain(`${docsOrigin}/openapi.json`);
    expect(errors).toEqual([]);
  });
});
