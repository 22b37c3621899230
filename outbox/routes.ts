import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Db } from "../src/db/client.ts";
import { NotFoundError, ValidationError } from "../src/errors.ts";
import type { EventRegistry } from "../src/events/registry.ts";
import type { AppEnv } from "../src/http/env.ts";
import { decodeCursor, listOf, PageQuery, page } from "../src/http/pagination.ts";
import { defineRoute, problem } from "../src/http/route.ts";
import { discardDeadLetter, lineage, listDeadLetters, queryEvents, replay, requestRedrive, setStatus } from "./admin.ts";
import type { Outbox } from "./index.ts";
import { compilePattern, eventSizeProblem, InvalidPatternError, PatternTooComplexError } from "./pattern.ts";

interface RoutesDeps {
  db: Db;
  registry: EventRegistry;
  outbox: Outbox;
  subscriptionsByType: () => (type: string) => string[];
}

const Envelope = z
  .object({
    specversion: z.literal("1.0"),
    id: z.string(),
    source: z.string(),
    type: z.string(),
    subject: z.string(),
    time: z.string(),
    datacontenttype: z.string(),
    data: z.unknown(),
    correlationid: z.string(),
    causationid: z.string().optional(),
    actorid: z.string().optional(),
    sequence: z.string().optional(),
  })
  .openapi("EventEnvelope");

const json = <T extends z.ZodType>(schema: T, description = "OK") => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { "application/json": { schema } } } });
const NameParam = z.object({ name: z.string().min(1).max(200) });
const IdParam = z.object({ id: z.uuid() });
const MAX_POSITION = 9_223_372_036_854_775_807n;
const Position = z
  .string()
  .regex(/^\d{1,19}$/, "a position is a non-negative integer")
  // zod runs refinements even after the regex failed, so only compare what is all digits.
  .refine((v) => !/^\d+$/.test(v) || BigInt(v) <= MAX_POSITION, "a position is at most 9223372036854775807");

/** digitsUpTo is a decimal string no greater than `max`, so a cast in SQL never overflows. */
const digitsUpTo = (max: bigint) =>
  z
    .string()
    .regex(/^\d{1,20}$/)
    // zod runs refinements even after the regex failed: BigInt("1e3") would throw, a 500.
    .refine((v) => !/^\d+$/.test(v) || BigInt(v) <= max);
// An event query cursor: the (transaction id, position) of the last event served.
const EventCursor = z.tuple([digitsUpTo(18_446_744_073_709_551_615n), digitsUpTo(MAX_POSITION)]);
// A dead-letter cursor: the id of the last dead letter served.
const DeadLetterCursor = z.tuple([z.uuid()]);

const DeadLetterSchema = z
  .object({
    id: z.string(),
    subscription: z.string(),
    partition: z.number().int(),
    status: z.enum(["dead", "redriving", "redriven"]),
    error: z.string(),
    attempts: z.number().int(),
    firstFailedAt: z.string(),
    lastFailedAt: z.string(),
    redrivenAt: z.string().nullable(),
    event: Envelope,
  })
  .openapi("DeadLetter");

// Measuring the event's size serializes it recursively; arbitrary JSON from this endpoint must not
// be able to exhaust the stack. Events the platform appends are shallow by their schemas.
const MAX_EVENT_DEPTH = 100;

/** nestingDepth measures how deep objects and arrays nest, iteratively, stopping past `cap`. */
function nestingDepth(value: unknown, cap: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d + 1 > deepest) deepest = d + 1;
    if (deepest > cap) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
}

/** outboxRoutes adds the event catalog, event queries, lineage and the admin API. */
const SubscriptionPartition = z
  .object({
    name: z.string(),
    partition: z.number().int(),
    partitions: z.number().int(),
    status: z.enum(["active", "paused"]),
    checkpoint: z.object({ transactionId: z.string(), position: z.string() }),
    processed: z.string().describe("events handled by this partition, as a decimal string"),
    lag: z.object({ events: z.number().int(), seconds: z.number() }).describe("events past the checkpoint (counted up to 100,000) and the age of the oldest"),
    leaseOwner: z.string().nullable().describe("process id holding the partition, if any"),
    leaseExpiresAt: z.string().nullable(),
    members: z.array(z.string()).describe("live processes running this subscription; its partitions are shared among them"),
    failing: z.object({ position: z.string(), attempts: z.number().int() }).nullable(),
    lastError: z.string().nullable(),
    lastErrorAt: z.string().nullable(),
    hostedHere: z.boolean().describe("whether this process runs the subscription"),
    kind: z.string(),
  })
  .openapi("SubscriptionPartition");
const SubscriptionList = z
  .object({
    subscriptions: z.array(SubscriptionPartition),
    sinks: z.array(z.object({ name: z.string(), enabled: z.boolean(), target: z.string().nullable(), reason: z.string().optional() })),
  })
  .openapi("SubscriptionList");

export function outboxRoutes(api: OpenAPIHono<AppEnv>, deps: RoutesDeps): void {
  const { db, registry, outbox } = deps;

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/events/catalog",
        tags: ["events"],
        summary: "Every event type with its source, whether it is public or internal, and the subscriptions that receive it",
        description:
          "A public event is its module's published contract: other modules may consume it and the EventBridge and Kinesis relays carry it. An internal one stays in the log for its own module's subscriptions.",
        responses: {
          200: json(
            z.object({
              types: z.array(
                z.object({
                  type: z.string(),
                  source: z.string(),
                  visibility: z.enum(["public", "internal"]),
                  description: z.string(),
                  subscribers: z.array(z.string()),
                  schema: z.string(),
                }),
              ),
            }),
          ),
          401: problem("Not signed in"),
        },
      },
    ),
    (c) => {
      const subs = deps.subscriptionsByType();
      return c.json(
        {
          types: registry.all().map((d) => ({
            type: d.type,
            source: d.source,
            visibility: d.visibility,
            description: d.description,
            subscribers: subs(d.type),
            schema: `/api/v1/events/schemas/${d.type}`,
          })),
        },
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/events/schemas/{type}",
        tags: ["events"],
        summary: "The JSON Schema of one event type's data, generated from its zod schema",
        request: { params: z.object({ type: z.string().min(1).max(200) }) },
        responses: { 200: json(z.record(z.string(), z.unknown())), 401: problem("Not signed in"), 404: problem("Unknown type") },
      },
    ),
    (c) => {
      const schema = registry.jsonSchema(c.req.valid("param").type);
      if (!schema) throw new NotFoundError("event type", "EVENTS.TYPE_NOT_FOUND");
      return c.json(schema, 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/events",
        tags: ["events"],
        summary: "Query the event log, in the order subscriptions read it, one page at a time",
        description:
          "Events come in (transaction, position) order, the order subscriptions deliver them in, and show once every older transaction has ended; paging with `cursor` never skips an event that commits late nor repeats one.",
        request: {
          query: PageQuery.extend({
            correlationId: z.string().max(200).optional(),
            type: z.string().max(200).optional(),
            source: z.string().max(200).optional(),
            subject: z.string().max(500).optional(),
            from: z.iso.datetime({ offset: true }).optional(),
            to: z.iso.datetime({ offset: true }).optional(),
          }),
        },
        responses: {
          200: json(listOf(Envelope, "EventPage")),
          400: problem("Bad filter or cursor"),
          401: problem("Not signed in"),
          403: problem("Admins only"),
        },
      },
    ),
    async (c) => {
      const { cursor, limit, ...filter } = c.req.valid("query");
      const after = decodeCursor(cursor, EventCursor);
      const rows = await queryEvents(db, { ...filter, after: after && { transactionId: after[0], position: after[1] }, limit: limit + 1 });
      const { items, nextCursor } = page(rows, limit, (r) => [r.key.transactionId, r.key.position]);
      return c.json({ items: items.map((r) => r.event), nextCursor }, 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/events/{id}/lineage",
        tags: ["events"],
        summary: "The causation chain of an event up to its root, and the tree of events the root caused",
        request: { params: IdParam },
        responses: { 200: json(z.record(z.string(), z.unknown())), 401: problem("Not signed in"), 403: problem("Admins only"), 404: problem("Unknown event") },
      },
    ),
    async (c) => c.json(await lineage(db, c.req.valid("param").id), 200),
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/admin/events/test-pattern",
        tags: ["admin"],
        summary: "Test an EventBridge event pattern against an event, like TestEventPattern",
        request: body(z.object({ pattern: z.record(z.string(), z.unknown()), event: z.record(z.string(), z.unknown()) })),
        responses: {
          200: json(z.object({ result: z.boolean() })),
          400: problem("Invalid pattern"),
          401: problem("Not signed in"),
          403: problem("Admins only"),
        },
      },
    ),
    (c) => {
      const { pattern, event } = c.req.valid("json");
      if (nestingDepth(event, MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH) {
        throw new ValidationError(
          `The event nests deeper than ${MAX_EVENT_DEPTH} levels.`,
          [{ path: "event", message: "too deeply nested" }],
          "EVENTS.EVENT_TOO_DEEP",
        );
      }
      const tooLarge = eventSizeProblem(event);
      if (tooLarge !== null)
        throw new ValidationError(`The event is too large: ${tooLarge}.`, [{ path: "event", message: tooLarge }], "EVENTS.EVENT_TOO_LARGE");
      try {
        return c.json({ result: compilePattern(pattern).matches(event) }, 200);
      } catch (err) {
        if (err instanceof InvalidPatternError) {
          const code = err instanceof PatternTooComplexError ? "EVENTS.PATTERN_TOO_COMPLEX" : "EVENTS.INVALID_PATTERN";
          throw new ValidationError(`Invalid event pattern: ${err.message}`, [{ path: `pattern.${err.path}`.replace(/\.$/, ""), message: err.message }], code);
        }
        throw err;
      }
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/admin/subscriptions",
        tags: ["admin"],
        summary: "Every subscription partition: checkpoint, lag, status, lease, last error",
        responses: { 200: json(SubscriptionList), 401: problem("Not signed in"), 403: problem("Admins only") },
      },
    ),
    async (c) => c.json({ subscriptions: await outbox.status(), sinks: [...outbox.sinks] }, 200),
  );

  for (const action of ["pause", "resume"] as const) {
    api.openapi(
      defineRoute(
        { access: "admin" },
        {
          method: "post",
          path: `/admin/subscriptions/{name}/${action}`,
          tags: ["admin"],
          summary: `${action === "pause" ? "Pause" : "Resume"} every partition of a subscription`,
          request: { params: NameParam },
          responses: {
            200: json(z.object({ name: z.string(), status: z.enum(["active", "paused"]) })),
            401: problem("Not signed in"),
            403: problem("Admins only"),
            404: problem("Unknown subscription"),
          },
        },
      ),
      async (c) => {
        const { name } = c.req.valid("param");
        const status = action === "pause" ? ("paused" as const) : ("active" as const);
        await setStatus(db, name, status);
        outbox.wake();
        return c.json({ name, status }, 200);
      },
    );
  }

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/admin/subscriptions/{name}/replay",
        tags: ["admin"],
        summary: "Reset a subscription's checkpoint so events from a position or a time are delivered again",
        request: {
          params: NameParam,
          ...body(z.object({ from: z.union([z.number().int().min(0), Position, z.iso.datetime({ offset: true })]) })),
        },
        responses: {
          200: json(z.object({ name: z.string(), fromPosition: z.string().nullable() })),
          400: problem("Bad start"),
          401: problem("Not signed in"),
          403: problem("Admins only"),
          404: problem("Unknown subscription"),
        },
      },
    ),
    async (c) => {
      const { name } = c.req.valid("param");
      const { from } = c.req.valid("json");
      const start = typeof from === "number" || /^\d+$/.test(from) ? { position: String(from) } : { time: from };
      const res = await replay(db, name, start);
      outbox.wake();
      return c.json({ name, ...res }, 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/admin/dead-letters",
        tags: ["admin"],
        summary: "Dead letters, newest first, one page at a time",
        request: {
          query: PageQuery.extend({
            subscription: z.string().max(200).optional(),
            status: z.enum(["dead", "redriving", "redriven"]).optional(),
          }),
        },
        responses: {
          200: json(listOf(DeadLetterSchema, "DeadLetterPage")),
          400: problem("Bad filter or cursor"),
          401: problem("Not signed in"),
          403: problem("Admins only"),
        },
      },
    ),
    async (c) => {
      const { cursor, limit, ...filter } = c.req.valid("query");
      const before = decodeCursor(cursor, DeadLetterCursor)?.[0];
      const rows = await listDeadLetters(db, { ...filter, before, limit: limit + 1 });
      return c.json(
        page(rows, limit, (d) => [d.id]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/admin/dead-letters/{id}/redrive",
        tags: ["admin"],
        summary: "Deliver a dead letter again through its subscription (asynchronously, by the subscription's worker)",
        request: { params: IdParam },
        responses: {
          202: json(z.object({ id: z.string(), status: z.literal("redriving") }), "Accepted"),
          401: problem("Not signed in"),
          403: problem("Admins only"),
          404: problem("Unknown dead letter"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      await requestRedrive(db, id);
      outbox.wake();
      return c.json({ id, status: "redriving" as const }, 202);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "delete",
        path: "/admin/dead-letters/{id}",
        tags: ["admin"],
        summary: "Discard a dead letter",
        request: { params: IdParam },
        responses: { 204: { description: "Discarded" }, 401: problem("Not signed in"), 403: problem("Admins only"), 404: problem("Unknown dead letter") },
      },
    ),
    async (c) => {
      await discardDeadLetter(db, c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
}
