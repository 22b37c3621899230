import { bigint, index, integer, jsonb, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { Order } from "./order.ts";

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
