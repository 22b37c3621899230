import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../src/errors.ts";
import type { AppEnv } from "../../src/http/env.ts";
import { decodeCursor, listOf, PageQuery, page } from "../../src/http/pagination.ts";
import { defineRoute, problem } from "../../src/http/route.ts";
import { lineage, queryEvents } from "../admin.ts";
import { digitsUpTo, Envelope, IdParam, json, MAX_POSITION, type RoutesDeps } from "./shared.ts";

// An event query cursor: the (transaction id, position) of the last event served.
const EventCursor = z.tuple([digitsUpTo(18_446_744_073_709_551_615n), digitsUpTo(MAX_POSITION)]);

/** eventRoutes adds the event catalog, the schemas of event types, the query of the log and lineage. */
export function eventRoutes(api: OpenAPIHono<AppEnv>, deps: RoutesDeps): void {
  const { db, registry } = deps;

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
}
