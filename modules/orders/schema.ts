import { bigint, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { Order } from "./order.ts";
import type { SagaState } from "./saga/process.ts";

export const ordersSchema = pgSchema("orders");

/**
 * order_views: the read model kept by the `orders.views` projection from the order streams,
 * one row per order: its details (`state`), and the columns the lists filter and sort on.
 * `last_sequence` is the log position of the last event applied, so a replay changes nothing.
 */
export const orderViews = ordersSchema.table(
  "order_views",
  {
    id: uuid("id").primaryKey(),
    customerId: uuid("customer_id").notNull(),
    status: text("status").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull(),
    version: integer("version").notNull(),
    lastSequence: bigint("last_sequence", { mode: "number" }).notNull(),
    state: jsonb("state").$type<Order>().notNull(),
  },
  (t) => [
    index("order_views_customer_id_idx").on(t.customerId, t.id),
    index("order_views_customer_status_id_idx").on(t.customerId, t.status, t.id),
    index("order_views_created_at_id_idx").on(t.createdAt, t.id),
  ],
);

/**
 * customer_histories: per customer, the orders placed and not cancelled and the sum of their
 * totals (the lifetime value), kept by the `orders.views` projection in the same transaction as
 * `order_views` (each changed order adds what it counts now minus what it counted before), so
 * the customer-history read is one primary-key lookup however many orders a customer has.
 */
export const customerHistories = ordersSchema.table("customer_histories", {
  customerId: uuid("customer_id").primaryKey(),
  orderCount: integer("order_count").notNull(),
  lifetimeCents: bigint("lifetime_cents", { mode: "number" }).notNull(),
});

/**
 * sagas: the order saga's state, one row per order, changed by the `orders.saga` subscription
 * under the row's lock; `status` repeats the state's, for queries.
 */
export const sagas = ordersSchema.table("sagas", {
  orderId: uuid("order_id").primaryKey(),
  status: text("status").notNull(),
  state: jsonb("state").$type<SagaState>().notNull(),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
});

/**
 * saga_deadlines: durable timeouts (one per order and kind), fired by the saga timer of any
 * process: rows due are claimed with `for update skip locked`, turned into a timeout event and
 * deleted in one transaction, so each fires once and survives restarts. The cause columns give
 * the timeout event the lineage of the event that set the deadline.
 */
export const sagaDeadlines = ordersSchema.table(
  "saga_deadlines",
  {
    orderId: uuid("order_id").notNull(),
    kind: text("kind").notNull(),
    dueAt: timestamp("due_at", { withTimezone: true, mode: "string" }).notNull(),
    timeoutMs: integer("timeout_ms").notNull(),
    causationId: text("causation_id").notNull(),
    correlationId: text("correlation_id").notNull(),
    actorId: text("actor_id"),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.kind] }), index("saga_deadlines_due_at_idx").on(t.dueAt)],
);
