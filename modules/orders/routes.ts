import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Context } from "hono";
import {
  type AppEnv,
  currentUser,
  decodeCursor,
  defineRoute,
  listOf,
  loadState,
  PageQuery,
  page,
  problem,
  runWithEventContext,
  stateAtTime,
  streamHistory,
  ValidationError,
} from "../../src/platform.ts";
import { now, type OrderAggregate, type OrdersDeps, placeOrder, runOrderCommand, withVersion } from "./commands.ts";
import { OrderNotFoundError } from "./errors.ts";
import { OrderLineSchema, ShippingAddressSchema } from "./events.ts";
import { MAX_LINES, MAX_QUANTITY, type OrderState } from "./order.ts";
import { listCustomerOrders, listOrdersCreatedBetween } from "./queries.ts";
import { SAGA_STATUSES, STEP_NAMES, STEP_STATUSES } from "./saga/process.ts";
import { getSaga } from "./saga/queries.ts";

const STATUSES = ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED"] as const;

const OrderSchema = z
  .object({
    id: z.uuid(),
    customerId: z.uuid(),
    status: z.enum(STATUSES),
    items: z.array(OrderLineSchema),
    totalCents: z.number().int(),
    currency: z.string(),
    shippingAddress: ShippingAddressSchema,
    paymentMethod: z.string(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    version: z.number().int(),
    cancellationReason: z.string().nullable(),
    trackingNumber: z.string().nullable(),
    carrier: z.string().nullable(),
  })
  .openapi("Order");

// Items are not strict: a client-sent price (or anything else) is dropped, never used.
const PlaceOrderSchema = z
  .object({
    items: z
      .array(z.object({ productId: z.uuid(), quantity: z.number().int().min(1).max(MAX_QUANTITY) }))
      .min(1)
      .max(MAX_LINES),
    shippingAddress: ShippingAddressSchema.strict(),
    paymentMethod: z.string().trim().min(1).max(100),
  })
  .strict()
  .openapi("PlaceOrder");

const HistorySchema = z
  .object({
    items: z.array(z.object({ version: z.number().int(), type: z.string(), time: z.iso.datetime(), eventId: z.string(), state: OrderSchema })),
  })
  .openapi("OrderHistory");

const SagaSchema = z
  .object({
    orderId: z.uuid(),
    status: z.enum(SAGA_STATUSES),
    steps: z.array(
      z.object({
        name: z.enum(STEP_NAMES),
        kind: z.enum(["action", "compensation"]),
        status: z.enum(STEP_STATUSES),
        startedAt: z.iso.datetime().nullable(),
        finishedAt: z.iso.datetime().nullable(),
        detail: z.string().nullable(),
      }),
    ),
    paymentDueAt: z.iso.datetime().nullable(),
    startedAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi("OrderSaga");

const IdParam = z.object({ id: z.uuid() });
const json = <T extends z.ZodType>(schema: T, description = "OK") => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { "application/json": { schema } } } });
const MAX_WAIT_SECONDS = 10;

/** preferredWait reads RFC 7240 `Prefer: wait=N` (seconds, capped at 10); 0 when absent. */
function preferredWait(header: string | undefined): number {
  const m = header && /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(header);
  return m ? Math.min(Number(m[1]), MAX_WAIT_SECONDS) : 0;
}

/** ordersRoutes adds the order routes. */
export function ordersRoutes(api: OpenAPIHono<AppEnv>, deps: OrdersDeps, orders: OrderAggregate): void {
  /** visible loads an order the caller may see (its owner or an admin); anyone else gets a 404, as if it did not exist. */
  const visible = async (c: Context<AppEnv>, id: string) => {
    const read = await loadState(orders, id);
    const user = currentUser(c);
    if (read.state.status === "NONE" || (read.state.customerId !== user.id && user.role !== "admin")) throw new OrderNotFoundError();
    return read;
  };
  const isFinal = (s: OrderState) => s.status !== "PENDING";
  /**
   * inOrderFlow runs a later command on an order (cancel, ship, deliver) under the correlation id
   * the order was placed with, so that every event of the order's flow, and of the compensations
   * a cancellation sets off, shares it and lineage shows the whole saga.
   */
  const inOrderFlow = async <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const [first] = (await deps.db.execute(
      sql`select correlation_id from outbox.events where stream_id = ${orders.streamId(id)} and stream_version = 1`,
    )) as unknown as { correlation_id: string }[];
    return first ? runWithEventContext({ correlationId: first.correlation_id }, fn) : fn();
  };

  api.openapi(
    defineRoute(
      { access: "user", idempotent: true },
      {
        method: "post",
        path: "/orders",
        tags: ["orders"],
        summary: "Place an order (prices come from the catalog); `Prefer: wait=N` waits up to N seconds (max 10) for the outcome",
        request: body(PlaceOrderSchema),
        responses: {
          201: json(OrderSchema, "The order, already confirmed or cancelled (with Prefer: wait)"),
          202: json(OrderSchema, "Accepted: the order is PENDING while stock is reserved"),
          400: problem("Invalid input"),
          401: problem("Not signed in"),
          422: problem("A product does not exist"),
        },
      },
    ),
    async (c) => {
      const placed = await placeOrder(deps, orders, { customerId: currentUser(c).id, ...c.req.valid("json") });
      c.header("location", `/api/v1/orders/${placed.id}`);
      const wait = preferredWait(c.req.header("prefer"));
      if (wait === 0) return c.json(placed, 202);
      const deadline = Date.now() + wait * 1000;
      let latest = placed;
      while (Date.now() < deadline) {
        await Bun.sleep(25);
        const read = await loadState(orders, placed.id);
        latest = withVersion(read);
        if (isFinal(read.state)) break;
      }
      c.header("preference-applied", `wait=${wait}`);
      return isFinal(latest) ? c.json(latest, 201) : c.json(latest, 202);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/orders/{id}",
        tags: ["orders"],
        summary: "One order (its owner or an admin); `?at=ISO-time` gives the order as it was then",
        request: { params: IdParam, query: z.object({ at: z.iso.datetime({ offset: true }).optional() }) },
        responses: {
          200: json(OrderSchema),
          400: problem("Invalid input"),
          401: problem("Not signed in"),
          404: problem("No such order (or not yours, or not yet placed at that time)"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const { at } = c.req.valid("query");
      const current = await visible(c, id);
      if (!at) return c.json(withVersion(current), 200);
      const then = await stateAtTime(orders, id, at);
      if (then.state.status === "NONE") throw new OrderNotFoundError("the order had not been placed at that time");
      return c.json(withVersion(then), 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/orders",
        tags: ["orders"],
        summary: "The caller's orders, newest first, optionally in one status",
        request: { query: PageQuery.extend({ status: z.enum(STATUSES).optional() }) },
        responses: { 200: json(listOf(OrderSchema, "OrderPage")), 400: problem("Invalid input"), 401: problem("Not signed in") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      const before = decodeCursor(q.cursor, z.tuple([z.uuid()]));
      const rows = await listCustomerOrders(deps.db, { customerId: currentUser(c).id, status: q.status, before: before?.[0], limit: q.limit + 1 });
      return c.json(
        page(rows, q.limit, (o) => [o.id]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "post",
        path: "/orders/{id}/cancel",
        tags: ["orders"],
        summary: "Cancel an order before it ships (its owner or an admin); cancelling a cancelled order changes nothing",
        request: {
          params: IdParam,
          ...body(
            z
              .object({ reason: z.string().trim().min(1).max(500) })
              .strict()
              .openapi("CancelOrder"),
          ),
        },
        responses: {
          200: json(OrderSchema),
          400: problem("Invalid input"),
          404: problem("No such order"),
          409: problem("Already shipped, or a concurrent change"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      await visible(c, id);
      const result = await runOrderCommand(orders, id, {
        type: "cancel",
        reason: c.req.valid("json").reason,
        code: "requested",
        now: now(deps.clock),
      });
      return c.json(withVersion(result), 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/orders/{id}/ship",
        tags: ["orders"],
        summary: "Hand a confirmed order to a carrier",
        request: {
          params: IdParam,
          ...body(
            z
              .object({ trackingNumber: z.string().trim().min(1).max(100), carrier: z.string().trim().min(1).max(100) })
              .strict()
              .openapi("ShipOrder"),
          ),
        },
        responses: {
          200: json(OrderSchema),
          400: problem("Invalid input"),
          403: problem("Not an admin"),
          404: problem("No such order"),
          409: problem("Cancelled, not confirmed, or already shipped"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const { trackingNumber, carrier } = c.req.valid("json");
      const result = await inOrderFlow(id, () => runOrderCommand(orders, id, { type: "ship", trackingNumber, carrier, now: now(deps.clock) }));
      return c.json(withVersion(result), 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/orders/{id}/deliver",
        tags: ["orders"],
        summary: "Record that a shipped order was delivered",
        request: { params: IdParam },
        responses: {
          200: json(OrderSchema),
          400: problem("Invalid input"),
          403: problem("Not an admin"),
          404: problem("No such order"),
          409: problem("Not shipped"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const result = await inOrderFlow(id, () => runOrderCommand(orders, id, { type: "deliver", now: now(deps.clock) }));
      return c.json(withVersion(result), 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/orders/{id}/history",
        tags: ["orders"],
        summary: "Every event of an order with its state after it (its owner or an admin)",
        request: { params: IdParam },
        responses: { 200: json(HistorySchema), 400: problem("Invalid input"), 404: problem("No such order") },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      await visible(c, id);
      const entries = await streamHistory(orders, id);
      return c.json(
        { items: entries.map((h) => ({ version: h.version, type: h.event.type, time: h.envelope.time, eventId: h.envelope.id, state: withVersion(h) })) },
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/orders/{id}/saga",
        tags: ["orders"],
        summary: "The order's saga: each step (reserve, pay, confirm, notify) and each compensation with its status and times (its owner or an admin)",
        request: { params: IdParam },
        responses: {
          200: json(SagaSchema),
          400: problem("Invalid input"),
          401: problem("Not signed in"),
          404: problem("No such order, or its saga has not started"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      await visible(c, id);
      const saga = await getSaga(deps.db, id);
      if (!saga) throw new OrderNotFoundError("the order's saga has not started yet");
      return c.json(saga, 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "get",
        path: "/admin/orders",
        tags: ["orders"],
        summary: "Orders created in [from, to), oldest first",
        request: { query: PageQuery.extend({ from: z.iso.datetime({ offset: true }), to: z.iso.datetime({ offset: true }) }) },
        responses: { 200: json(listOf(OrderSchema, "AdminOrderPage")), 400: problem("Invalid input"), 403: problem("Not an admin") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      if (new Date(q.from) > new Date(q.to)) throw new ValidationError("`from` must not be after `to`", [{ path: "query.from", message: "after `to`" }]);
      const after = decodeCursor(q.cursor, z.tuple([z.iso.datetime(), z.uuid()]));
      const rows = await listOrdersCreatedBetween(deps.db, { from: q.from, to: q.to, after, limit: q.limit + 1 });
      const { items, nextCursor } = page(rows, q.limit, (o) => o._key);
      return c.json({ items: items.map(({ _key, ...o }) => o), nextCursor }, 200);
    },
  );
}
