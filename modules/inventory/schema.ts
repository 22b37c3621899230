import { sql } from "drizzle-orm";
import { check, index, integer, jsonb, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const inventorySchema = pgSchema("inventory");

/**
 * products: the catalog with its stock. `available` is derived by Postgres, and the checks make
 * an oversell or a negative count impossible whatever a bug in the code tries.
 */
export const products = inventorySchema.table(
  "products",
  {
    id: uuid("id").primaryKey(),
    sku: text("sku").notNull().unique("products_sku_key"),
    name: text("name").notNull(),
    category: text("category").notNull(),
    priceCents: integer("price_cents").notNull(),
    costCents: integer("cost_cents").notNull(),
    stock: integer("stock").notNull().default(0),
    reserved: integer("reserved").notNull().default(0),
    available: integer("available").generatedAlwaysAs(sql`stock - reserved`),
    lowStockThreshold: integer("low_stock_threshold").notNull().default(10),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [
    check("products_stock_nonnegative", sql`${t.stock} >= 0`),
    check("products_reserved_within_stock", sql`${t.reserved} >= 0 and ${t.reserved} <= ${t.stock}`),
    check("products_money_nonnegative", sql`${t.priceCents} >= 0 and ${t.costCents} >= 0`),
    check("products_threshold_nonnegative", sql`${t.lowStockThreshold} >= 0`),
    index("products_category_id_idx").on(t.category, t.id),
  ],
);

/**
 * reservations: one row per order, keyed by its id, so reserving, releasing and committing each
 * happen once however often their events arrive. A failed attempt is kept too: a redelivered
 * `order.created` finds it and does nothing.
 */
export const reservations = inventorySchema.table("reservations", {
  orderId: uuid("order_id").primaryKey(),
  status: text("status", { enum: ["reserved", "failed", "released", "committed"] }).notNull(),
  /** The quantities per product that were reserved (one entry per product), `[]` when failed. */
  lines: jsonb("lines").$type<{ productId: string; quantity: number }[]>().notNull(),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
});
