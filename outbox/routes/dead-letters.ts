import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../src/http/env.ts";
import { decodeCursor, listOf, PageQuery, page } from "../../src/http/pagination.ts";
import { defineRoute, problem } from "../../src/http/route.ts";
import { discardDeadLetter, listDeadLetters, requestRedrive } from "../admin.ts";
import { Envelope, IdParam, json, type RoutesDeps } from "./shared.ts";

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

/** deadLetterRoutes adds the admin's dead letters: list, redrive, discard. */
export function deadLetterRoutes(api: OpenAPIHono<AppEnv>, deps: RoutesDeps): void {
  const { db, outbox } = deps;

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
