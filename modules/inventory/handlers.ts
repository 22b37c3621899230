import { sql } from "drizzle-orm";
import { type Appender, assertNever, defineSubscription } from "../../src/platform.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated } from "../orders/events.ts";
import { commitStock, lockProducts, releaseStock, reserveStock, type StockLine } from "./reservations.ts";

/**
 * stockOnOrderEvents keeps an order's stock in step with the order: reserve on `order.created`,
 * commit on `order.confirmed`, release on `order.cancelled`. One subscription for the three, so
 * that an order's events are handled in their order (partitions split by order id); several
 * partitions let orders proceed in parallel.
 *
 * A batch runs in one transaction, so the product rows its events lock stay locked until it
 * commits. Locked event by event, two partitions' batches could take two products in opposite
 * orders and deadlock; so a batch first locks every product it will touch, in one statement in
 * id order, and batches queue on the first product they share instead.
 */
export const stockOnOrderEvents = (outbox: Appender) =>
  defineSubscription({
    name: "inventory.reservations",
    on: [OrderCreated, OrderConfirmed, OrderCancelled],
    partitions: 4,
    handleBatch: async (events, { tx }) => {
      const ids = new Set<string>();
      const later = [];
      for (const e of events) {
        if (e.type === "order.created") for (const i of e.data.items) ids.add(i.productId);
        else later.push(e.data.orderId);
      }
      if (later.length > 0) {
        const rows = (await tx.execute(sql`select lines from inventory.reservations where order_id = any(${sql.param(later)}::uuid[])`)) as unknown as {
          lines: StockLine[];
        }[];
        for (const r of rows) for (const l of r.lines) ids.add(l.productId);
      }
      if (ids.size > 0) await lockProducts(tx, [...ids].sort());
      for (const event of events) {
        switch (event.type) {
          case "order.created":
            await reserveStock(tx, outbox, event.data.orderId, event.data.items, event);
            break;
          case "order.confirmed":
            await commitStock(tx, outbox, event.data.orderId, event);
            break;
          case "order.cancelled":
            await releaseStock(tx, outbox, event.data.orderId, event);
            break;
          default:
            assertNever(event);
        }
      }
    },
  });
