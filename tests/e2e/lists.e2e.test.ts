import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

// One list envelope for the whole API: every GET that answers a list, or takes `cursor` or
// `limit`, answers `{items, nextCursor}` and takes both parameters. The document is walked, so a
// new module's list is held to it the day it lands.

/**
 * Lists that may keep their own shape, by operation, each with the reason. They must be small
 * and fixed: bounded by what the code declares, not by rows that users create.
 */
const FIXED_SETS: Record<string, string> = {
  "GET /api/v1/events/catalog": "one entry per event type the code declares",
  "GET /api/v1/admin/subscriptions": "one entry per subscription partition and sink the code declares",
  "GET /api/v1/orders/{id}/history":
    "one entry per event of one order, whose lifecycle has a handful (placed, confirmed, shipped, delivered or cancelled); the shape the issue fixes",
  // Single resources whose own fields are arrays: not lists at all.
  "GET /api/v1/posts/{id}": "one post; its arrays are its tags and media URLs",
  "GET /api/v1/orders/{id}": "one order; `items` are its lines, at most 50",
  "GET /api/v1/orders/{id}/saga": "one order's saga; `steps` are its fixed steps and compensations, at most 8",
};

type Schema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
};
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  parameters?: Parameter[];
  responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

/**
 * listEnvelopeProblems lists every GET operation under /api/v1 that answers a list (an array, or
 * an object holding one) or takes `cursor`/`limit`, but breaks the envelope; `fixed` exempts
 * small fixed sets, and an exemption that no longer matches a list is a problem too.
 */
function listEnvelopeProblems(doc: OpenApiDocument, fixed: Record<string, string>): { paged: string[]; problems: string[] } {
  const deref = (s: Schema | undefined): Schema | undefined => {
    for (let i = 0; s?.$ref && i < 20; i++) s = doc.components?.schemas?.[s.$ref.replace("#/components/schemas/", "")];
    return s;
  };
  const types = (s: Schema | undefined): string[] => {
    const d = deref(s);
    if (!d) return [];
    if (d.anyOf || d.oneOf) return (d.anyOf ?? d.oneOf)!.flatMap(types);
    return d.type === undefined ? [] : Array.isArray(d.type) ? d.type : [d.type];
  };
  const isList = (s: Schema | undefined): boolean => {
    const d = deref(s);
    if (types(d).includes("array")) return true;
    return Object.values(d?.properties ?? {}).some((p) => types(p).includes("array"));
  };
  const paged: string[] = [];
  const problems: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const op = item.get;
    if (!path.startsWith("/api/v1/") || !op) continue;
    const name = `GET ${path}`;
    const body = deref(op.responses?.["200"]?.content?.["application/json"]?.schema);
    const params = new Map((op.parameters ?? []).filter((p) => p.in === "query").map((p) => [p.name, p]));
    const takesPaging = params.has("cursor") || params.has("limit");
    if (name in fixed) {
      if (!isList(body) || takesPaging)
        problems.push(`${name}: allow-listed as a fixed set, but it is ${takesPaging ? "paged" : "not a list"}; drop it from the allow-list`);
      continue;
    }
    if (!isList(body) && !takesPaging) continue;
    paged.push(name);
    const props = body?.properties ?? {};
    if (Object.keys(props).sort().join() !== "items,nextCursor")
      problems.push(`${name}: answers {${Object.keys(props).join(", ")}} instead of {items, nextCursor} (use listOf from src/platform.ts)`);
    if (!types(props.items).includes("array")) problems.push(`${name}: items is not an array`);
    const next = types(props.nextCursor).sort().join();
    if (next !== "null,string") problems.push(`${name}: nextCursor is [${next}], not string|null`);
    if (!["items", "nextCursor"].every((k) => body?.required?.includes(k))) problems.push(`${name}: items and nextCursor must both be required`);
    const cursor = params.get("cursor");
    if (!cursor || cursor.required || !types(cursor.schema).includes("string"))
      problems.push(`${name}: no optional string query parameter "cursor" (use PageQuery)`);
    const limit = deref(params.get("limit")?.schema);
    if (!limit || params.get("limit")?.required || !types(limit).includes("integer") || limit.minimum !== 1 || limit.maximum !== 100 || limit.default !== 20) {
      problems.push(`${name}: no optional integer query parameter "limit" of 1-100, default 20 (use PageQuery)`);
    }
  }
  return { paged, problems };
}

let server: TestServer;
let doc: OpenApiDocument;

beforeAll(async () => {
  server = await startTestServer({ ROLES: "api" });
  const port = server.listen();
  const res = await fetch(`http://127.0.0.1:${port}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDocument;
});
afterAll(async () => {
  await server?.close();
});

describe("/openapi.json lists", () => {
  it("shapes every paged list {items, nextCursor} with cursor and limit", () => {
    const { paged, problems } = listEnvelopeProblems(doc, FIXED_SETS);
    expect(problems).toEqual([]);
    // The lists that must be paged today are found, so the walk is not vacuous.
    expect(paged).toEqual(expect.arrayContaining(["GET /api/v1/events", "GET /api/v1/admin/dead-letters"]));
  });

  it("finds every kind of offender in a planted document", () => {
    const page = {
      type: "object",
      properties: { items: { type: "array" }, nextCursor: { type: ["string", "null"] } },
      required: ["items", "nextCursor"],
    } as Schema;
    const pageParams: Parameter[] = [
      { name: "cursor", in: "query", schema: { type: "string" } },
      { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 100, default: 20 } },
    ];
    const ok = (schema: Schema, parameters?: Parameter[]) => ({ get: { parameters, responses: { 200: { content: { "application/json": { schema } } } } } });
    const planted: OpenApiDocument = {
      components: { schemas: { Page: page, Posts: { type: "object", properties: { posts: { type: "array" } } } } },
      paths: {
        "/api/v1/good": ok({ $ref: "#/components/schemas/Page" }, pageParams),
        "/api/v1/bare-array": ok({ type: "array" }),
        "/api/v1/named-list": ok({ $ref: "#/components/schemas/Posts" }, pageParams),
        "/api/v1/no-params": ok(page),
        "/api/v1/big-limit": ok(page, [pageParams[0]!, { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } }]),
        "/api/v1/limit-only": ok({ type: "object", properties: { n: { type: "integer" } } }, [pageParams[1]!]),
        "/api/v1/stale-exemption": ok({ type: "object", properties: { n: { type: "integer" } } }),
        "/api/v1/exempt": ok({ type: "object", properties: { all: { type: "array" } } }),
        "/api/v1/one-thing": ok({ type: "object", properties: { n: { type: "integer" } } }),
      },
    };
    const { paged, problems } = listEnvelopeProblems(planted, { "GET /api/v1/exempt": "fixed", "GET /api/v1/stale-exemption": "was a list once" });
    expect(paged).toEqual([
      "GET /api/v1/good",
      "GET /api/v1/bare-array",
      "GET /api/v1/named-list",
      "GET /api/v1/no-params",
      "GET /api/v1/big-limit",
      "GET /api/v1/limit-only",
    ]);
    const offenders = [...new Set(problems.map((p) => p.split(":")[0]))];
    expect(offenders).toEqual([
      "GET /api/v1/bare-array",
      "GET /api/v1/named-list",
      "GET /api/v1/no-params",
      "GET /api/v1/big-limit",
      "GET /api/v1/limit-only",
      "GET /api/v1/stale-exemption",
    ]);
    expect(problems).toContain("GET /api/v1/named-list: answers {posts} instead of {items, nextCursor} (use listOf from src/platform.ts)");
  });
});
