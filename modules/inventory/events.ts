import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

const ReservedLine = z.object({ productId: z.uuid(), quantity: z.number().int().positive() });

/** InventoryReserved is published when every line of an order is reserved (all or nothing). */
export const InventoryReserved = defineEvent({
  source: "inventory",
  type: "inventory.reserved",
  visibility: "public",
  description: "Stock for every line of an order was reserved.",
  schema: z.object({ orderId: z.uuid(), lines: z.array(ReservedLine).min(1) }),
});

/** ShortLineSchema is a line that could not be reserved: what was asked and what was available. */
export const ShortLineSchema = z.object({ productId: z.uuid(), requested: z.number().int().positive(), available: z.number().int().nonnegative() });

/** InventoryReservationFailed is published when an order could not be reserved; nothing was reserved. */
export const InventoryReservationFailed = defineEvent({
  source: "inventory",
  type: "inventory.reservation_failed",
  visibility: "public",
  description: "An order's stock could not be reserved: a product does not exist, or stock is short (requested and available per line).",
  schema: z.discriminatedUnion("reason", [
    z.object({ orderId: z.uuid(), reason: z.literal("product_not_found"), productIds: z.array(z.uuid()).min(1) }),
    z.object({ orderId: z.uuid(), reason: z.literal("insufficient_stock"), lines: z.array(ShortLineSchema).min(1) }),
  ]),
});

/** InventoryReleased is published when an order's stock goes back: a reservation released, or committed stock returned. */
export const InventoryReleased = defineEvent({
  source: "inventory",
  type: "inventory.released",
  visibility: "public",
  description: "An order's reserved (or already committed) stock was given back.",
  schema: z.object({ orderId: z.uuid(), lines: z.array(ReservedLine).min(1), from: z.enum(["reserved", "committed"]) }),
});

/** InventoryCommitted is published when a confirmed order's reservation becomes a stock decrement. */
export const InventoryCommitted = defineEvent({
  source: "inventory",
  type: "inventory.committed",
  visibility: "public",
  description: "A confirmed order's reservation was turned into a stock decrement.",
  schema: z.object({ orderId: z.uuid(), lines: z.array(ReservedLine).min(1) }),
});

/** InventoryLow is published once each time a product's available stock crosses down through its threshold. */
export const InventoryLow = defineEvent({
  source: "inventory",
  type: "inventory.low",
  visibility: "public",
  description: "A product's available stock fell to or below its low-stock threshold.",
  schema: z.object({
    productId: z.uuid(),
    sku: z.string(),
    name: z.string(),
    available: z.number().int().nonnegative(),
    threshold: z.number().int().nonnegative(),
  }),
});

/** inventoryEvents lists every event the inventory module publishes. */
export const inventoryEvents = [InventoryReserved, InventoryReservationFailed, InventoryReleased, InventoryCommitted, InventoryLow];
