import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { type AppEnv, currentUser, type Db, defineRoute, listOf, PageQuery, problem, requestLog } from "../../src/platform.ts";
import { registerDevice, removeDevice } from "./devices.ts";
import { StreamsUnavailableError } from "./errors.ts";
import { listNotifications, markAllRead, markRead, unreadCount } from "./queries.ts";
import type { NotificationStreams } from "./stream/index.ts";

const NotificationSchema = z
  .object({
    id: z.uuid(),
    type: z.string().openapi({ example: "new_follower", description: "snake_case" }),
    title: z.string(),
    message: z.string(),
    data: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
    read: z.boolean(),
  })
  .openapi("Notification");
const NotificationPage = listOf(NotificationSchema, "NotificationPage");

const DeviceSchema = z.object({ id: z.uuid(), platform: z.enum(["ios", "android", "web"]), token: z.string(), createdAt: z.iso.datetime() }).openapi("Device");
const RegisterDeviceSchema = z
  .object({ platform: z.enum(["ios", "android", "web"]), token: z.string().trim().min(1).max(4096) })
  .strict()
  .openapi("RegisterDevice");

const IdParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });
const ListQuery = PageQuery.extend({
  unread: z
    .enum(["true", "false"])
    .optional()
    .transform((v) => v === "true")
    .openapi({ description: "`true`: only unread notifications" }),
});
const StreamHeaders = z.object({
  "last-event-id": z
    .string()
    .regex(/^\d{1,15}$/, "the id of the last event received")
    .optional()
    .openapi({ param: { name: "last-event-id", in: "header" }, description: "Resume: replay every notification after this event id" }),
});
const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

/** NotificationsRouteDeps are what the routes need. */
export interface NotificationsRouteDeps {
  db: Db;
  streams: NotificationStreams;
  /** How often an open stream checks its caller's token again (a revoked or expired one ends it). */
  recheckMs: number;
}

/** notificationsRoutes adds the caller's notifications, their live stream, and device registration. */
export function notificationsRoutes(api: OpenAPIHono<AppEnv>, deps: NotificationsRouteDeps): void {
  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/notifications",
        tags: ["notifications"],
        summary: "The caller's notifications, newest first (`?unread=true` for the unread only)",
        request: { query: ListQuery },
        responses: {
          200: { description: "A page", content: json(NotificationPage) },
          400: problem("Invalid cursor, limit or filter"),
          401: problem("Not signed in"),
        },
      },
    ),
    async (c) => c.json(await listNotifications(deps.db, currentUser(c).id, c.req.valid("query")), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/notifications/unread-count",
        tags: ["notifications"],
        summary: "How many of the caller's notifications are unread",
        responses: { 200: { description: "The count", content: json(z.object({ count: z.number().int() })) }, 401: problem("Not signed in") },
      },
    ),
    async (c) => c.json({ count: await unreadCount(deps.db, currentUser(c).id) }, 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "post",
        path: "/notifications/{id}/read",
        tags: ["notifications"],
        summary: "Mark one of the caller's notifications read (idempotent)",
        request: { params: IdParam },
        responses: {
          200: { description: "The notification, read", content: json(NotificationSchema) },
          400: problem("Invalid id"),
          401: problem("Not signed in"),
          404: problem("No such notification of the caller's"),
        },
      },
    ),
    async (c) => c.json(await markRead(deps.db, currentUser(c).id, c.req.valid("param").id), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "post",
        path: "/notifications/read-all",
        tags: ["notifications"],
        summary: "Mark every notification of the caller's read",
        responses: {
          200: { description: "How many were marked read now", content: json(z.object({ marked: z.number().int() })) },
          401: problem("Not signed in"),
        },
      },
    ),
    async (c) => c.json({ marked: await markAllRead(deps.db, currentUser(c).id) }, 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/notifications/stream",
        tags: ["notifications"],
        summary: "The caller's notifications live, as Server-Sent Events",
        description:
          "Each notification is an event `notification` whose `id` is its sequence number in the caller's inbox and whose data is the notification. " +
          "Send `Last-Event-ID` (browsers do on reconnect) to replay what came after it. A comment line is sent as a heartbeat.",
        request: { headers: StreamHeaders },
        responses: {
          200: { description: "An event stream", content: { "text/event-stream": { schema: z.string() } } },
          400: problem("Invalid Last-Event-ID"),
          401: problem("Not signed in"),
          503: problem("The stream cannot start now"),
        },
      },
    ),
    (async (c: Context<AppEnv, string, { out: { header: z.output<typeof StreamHeaders> } }>) => {
      const userId = currentUser(c).id;
      const header = c.req.valid("header")["last-event-id"];
      const lastEventId = header === undefined ? undefined : Number(header);
      try {
        await deps.streams.ready();
      } catch (err) {
        requestLog(c).warn({ err }, "notification stream cannot listen");
        throw new StreamsUnavailableError();
      }
      // Bun closes a connection idle for 10 s by default; heartbeats may be further apart.
      (c.env as { timeout?: (req: Request, seconds: number) => void } | undefined)?.timeout?.(c.req.raw, 0);
      return streamSSE(c, async (stream) => {
        let handle: Awaited<ReturnType<NotificationStreams["open"]>>;
        try {
          handle = await deps.streams.open(userId, lastEventId, {
            send: (seq, n) => stream.writeSSE({ id: String(seq), event: "notification", data: JSON.stringify(n) }),
            comment: async (text) => {
              await stream.write(`: ${text}\n\n`);
            },
            close: () => void stream.close().catch(() => {}),
          });
        } catch (err) {
          // The response has started: all that is left is to end it; the client reconnects with Last-Event-ID.
          requestLog(c).warn({ err }, "notification stream could not start");
          return;
        }
        // Sent once the stream is registered: from here on nothing the caller is sent can be missed.
        await stream.write(": connected\n\n");
        // The token was checked when the stream opened; a stream outlives many requests, so it is
        // checked again every heartbeat period: a password change, a disable, a deleted account
        // or an expiry ends it, as it would end the caller's next request.
        const token = (c.req.header("authorization") ?? "").split(" ")[1] ?? "";
        const verifyToken = c.get("platform").verifyToken;
        const recheck = setInterval(() => {
          verifyToken(token).then(
            (user) => {
              if (user.id !== userId) handle.close();
            },
            () => handle.close(),
          );
        }, deps.recheckMs);
        recheck.unref?.();
        stream.onAbort(() => {
          handle.close();
        });
        if (stream.aborted) handle.close();
        await handle.closed.finally(() => clearInterval(recheck));
      });
    }) as never,
  );

  api.openapi(
    defineRoute(
      { access: "user", idempotent: true },
      {
        method: "post",
        path: "/users/me/devices",
        tags: ["notifications"],
        summary: "Register a device for push notifications (idempotent per token)",
        request: { body: { required: true, content: json(RegisterDeviceSchema) } },
        responses: {
          201: { description: "The device (the same one for a token registered before)", content: json(DeviceSchema) },
          400: problem("Invalid input"),
          401: problem("Not signed in"),
          422: problem("Too many devices"),
        },
      },
    ),
    async (c) => {
      const device = await registerDevice(deps.db, currentUser(c).id, c.req.valid("json"));
      c.header("location", `/api/v1/users/me/devices/${device.id}`);
      return c.json(device, 201);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "delete",
        path: "/users/me/devices/{id}",
        tags: ["notifications"],
        summary: "Remove one of the caller's devices",
        request: { params: IdParam },
        responses: {
          204: { description: "Removed" },
          400: problem("Invalid id"),
          401: problem("Not signed in"),
          404: problem("No such device of the caller's"),
        },
      },
    ),
    async (c) => {
      await removeDevice(deps.db, currentUser(c).id, c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
}
