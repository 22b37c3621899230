import { createHash, timingSafeEqual } from "node:crypto";
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, decodeCursor, defineRoute, listOf, PageQuery, page, problem } from "../../src/platform.ts";
import { BadBatchError, BatchTooLargeError, IngestKeyRequiredError } from "./errors.ts";
import { type IngestDeps, MAX_BATCH, storeEvents } from "./ingest.ts";
import { consumerStatus, listRevenue, listRisk, listSessions, listVelocity } from "./queries.ts";
import { type Caller, ClickEventSchema, validateEvents } from "./validate.ts";

/** RoutesDeps are what the analytics routes need. */
export interface RoutesDeps extends IngestDeps {
  /** The key anonymous ingestion must present in `x-api-key`; undefined: anonymous ingestion is off. */
  ingestKey?: string;
  allowedLatenessMs: number;
  clock: () => Date;
}

const json = <T extends z.ZodType>(schema: T, description = "OK") => ({ description, content: { "application/json": { schema } } });
const Instant = z.iso.datetime({ offset: true });
const WindowKey = z.tuple([z.iso.datetime(), z.string().max(200)]);

const FieldErrorSchema = z.object({ path: z.string(), message: z.string(), code: z.string().optional() });
const IngestResultSchema = z
  .object({
    accepted: z.number().int().openapi({ description: "Valid events, stored or already stored (a repeated eventId is counted once)." }),
    duplicates: z.number().int().openapi({ description: "Accepted events whose eventId was already stored." }),
    rejected: z.array(z.object({ index: z.number().int(), errors: z.array(FieldErrorSchema) })),
  })
  .openapi("IngestResult");
// The body is checked event by event in the handler (one bad event must not refuse the batch),
// so the route's validator takes anything; ClickEvent documents one event.
const IngestBody = z.unknown().openapi("ClickEventBatch", {
  description: `One ClickEvent, or {events: [ClickEvent, ...]} with 1 to ${MAX_BATCH}.`,
  example: { events: [{ userId: "u-1", sessionId: "s-1", eventType: "purchase", productId: "p-1", category: "books", price: 12.5, quantity: 2 }] },
});

const RevenueSchema = z
  .object({
    windowStart: z.string(),
    windowEnd: z.string(),
    category: z.string(),
    orderCount: z.number().int(),
    revenueCents: z.number().int(),
    averageOrderValueCents: z.number().int(),
    uniqueCustomers: z.number().int(),
  })
  .openapi("RevenueWindow");
const RiskSchema = z
  .object({
    userId: z.string(),
    windowStart: z.string(),
    windowEnd: z.string(),
    purchaseCount: z.number().int(),
    totalCents: z.number().int(),
    averageCents: z.number().int(),
    countryCount: z.number().int(),
    level: z.enum(["LOW_RISK", "MEDIUM_RISK", "HIGH_RISK"]),
  })
  .openapi("RiskWindow");
const VelocitySchema = z
  .object({
    productId: z.string(),
    windowStart: z.string(),
    windowEnd: z.string(),
    units: z.number().int(),
    saleCount: z.number().int(),
    velocity: z.enum(["FAST_MOVING", "MODERATE", "SLOW_MOVING"]),
  })
  .openapi("VelocityWindow");
const SessionSchema = z
  .object({
    userId: z.string(),
    sessionId: z.string(),
    start: z.string(),
    end: z.string(),
    eventCount: z.number().int(),
    pageViews: z.number().int(),
    cartAdditions: z.number().int(),
    purchases: z.number().int(),
    revenueCents: z.number().int(),
    closed: z.boolean().openapi({ description: "30 minutes (plus the allowed lateness) of event time have passed since its last event." }),
  })
  .openapi("AnalyticsSession");
const SessionKey = z.tuple([z.iso.datetime(), z.string().max(200), z.string().max(200)]);
const ConsumerSchema = z
  .object({
    watermark: z.string().nullable(),
    allowedLatenessMs: z.number().int(),
    lateEvents: z.object({ revenue: z.number().int(), risk: z.number().int(), velocity: z.number().int(), sessions: z.number().int() }),
  })
  .openapi("AnalyticsConsumerStatus");

const digest = (s: string) => createHash("sha256").update(s).digest();

/** analyticsRoutes adds ingestion (signed-in users or the ingestion key) and the admin reads. */
export function analyticsRoutes(api: OpenAPIHono<AppEnv>, deps: RoutesDeps): void {
  const keyDigest = deps.ingestKey ? digest(deps.ingestKey) : undefined;
  api.openAPIRegistry.register("ClickEvent", ClickEventSchema);

  api.openapi(
    defineRoute(
      { access: "public" },
      {
        method: "post",
        path: "/analytics/events",
        tags: ["analytics"],
        summary: "Ingest clickstream events (a bearer token for one's own events, or the ingestion key in x-api-key)",
        description:
          "Each event is validated on its own: the valid ones are stored even when others are refused (202 with the refused indexes and why). " +
          "Events with an eventId already stored are accepted and counted once.",
        request: { body: { required: true, content: { "application/json": { schema: IngestBody } } } },
        responses: {
          202: json(IngestResultSchema, "Accepted (possibly in part)"),
          400: problem("Not an event or a batch"),
          401: problem("Neither a valid token nor the ingestion key"),
          413: problem(`More than ${MAX_BATCH} events`),
        },
      },
    ),
    async (c) => {
      const user = c.get("user");
      let caller: Caller;
      if (user) caller = { kind: "user", userId: user.id };
      else {
        const key = c.req.header("x-api-key");
        if (!keyDigest || key === undefined || !timingSafeEqual(digest(key), keyDigest)) throw new IngestKeyRequiredError(keyDigest !== undefined);
        caller = { kind: "key" };
      }
      const body = c.req.valid("json");
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new BadBatchError("send one event or {events: [...]}");
      const raw = "events" in body ? (body as { events: unknown }).events : [body];
      if (!Array.isArray(raw)) throw new BadBatchError("events must be an array");
      if (raw.length === 0) throw new BadBatchError("events is empty");
      if (raw.length > MAX_BATCH) throw new BatchTooLargeError(MAX_BATCH, raw.length);
      const now = deps.clock();
      const { valid, rejected } = validateEvents(raw, caller, now);
      const stored = await storeEvents(
        deps,
        valid.map((v) => v.event),
        now,
      );
      return c.json({ accepted: valid.length, duplicates: valid.length - stored, rejected }, 202);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/analytics/revenue",
        tags: ["analytics"],
        summary: "Revenue by category per 5-minute event-time window (money in cents)",
        request: { query: PageQuery.extend({ from: Instant.optional(), to: Instant.optional(), category: z.string().min(1).max(100).optional() }) },
        responses: { 200: json(listOf(RevenueSchema, "RevenueWindowPage")), 400: problem("Invalid query"), 403: problem("Not an admin") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      const after = decodeCursor(q.cursor, WindowKey);
      const rows = await listRevenue(deps.db, { ...q, after, limit: q.limit + 1 });
      return c.json(
        page(rows, q.limit, (r) => [r.windowStart, r.category]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/analytics/risk",
        tags: ["analytics"],
        summary: "Fraud risk per user per 1-hour event-time window",
        request: { query: PageQuery.extend({ level: z.enum(["LOW_RISK", "MEDIUM_RISK", "HIGH_RISK"]).optional() }) },
        responses: { 200: json(listOf(RiskSchema, "RiskWindowPage")), 400: problem("Invalid query"), 403: problem("Not an admin") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      const after = decodeCursor(q.cursor, WindowKey);
      const rows = await listRisk(deps.db, { level: q.level, after, limit: q.limit + 1 });
      return c.json(
        page(rows, q.limit, (r) => [r.windowStart, r.userId]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/analytics/velocity",
        tags: ["analytics"],
        summary: "Product velocity per 1-hour event-time window (product-hours over 10 units)",
        request: { query: PageQuery.extend({ from: Instant.optional(), to: Instant.optional() }) },
        responses: { 200: json(listOf(VelocitySchema, "VelocityWindowPage")), 400: problem("Invalid query"), 403: problem("Not an admin") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      const after = decodeCursor(q.cursor, WindowKey);
      const rows = await listVelocity(deps.db, { from: q.from, to: q.to, after, limit: q.limit + 1 });
      return c.json(
        page(rows, q.limit, (r) => [r.windowStart, r.productId]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/analytics/sessions",
        tags: ["analytics"],
        summary: "Sessions (30 minutes of inactivity end one), optionally of one user",
        request: { query: PageQuery.extend({ userId: z.string().min(1).max(128).optional() }) },
        responses: { 200: json(listOf(SessionSchema, "AnalyticsSessionPage")), 400: problem("Invalid query"), 403: problem("Not an admin") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      const after = decodeCursor(q.cursor, SessionKey);
      const { watermark } = await consumerStatus(deps.db, deps.allowedLatenessMs);
      const rows = await listSessions(deps.db, { userId: q.userId, after, limit: q.limit + 1, watermark, allowedLatenessMs: deps.allowedLatenessMs });
      return c.json(
        page(rows, q.limit, (r) => [r.start, r.userId, r.sessionId]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/analytics/consumer",
        tags: ["analytics"],
        summary: "The aggregating consumer's watermark and late events per aggregate",
        responses: { 200: json(ConsumerSchema), 403: problem("Not an admin") },
      },
    ),
    async (c) => c.json(await consumerStatus(deps.db, deps.allowedLatenessMs), 200),
  );
}
