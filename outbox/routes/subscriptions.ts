import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../src/http/env.ts";
import { defineRoute, problem } from "../../src/http/route.ts";
import { replay, setStatus } from "../admin.ts";
import { body, json, NameParam, Position, type RoutesDeps } from "./shared.ts";

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

/** subscriptionRoutes adds the admin's view of subscriptions: status, pause and resume, replay. */
export function subscriptionRoutes(api: OpenAPIHono<AppEnv>, deps: RoutesDeps): void {
  const { db, outbox } = deps;

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
}
