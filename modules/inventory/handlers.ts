import { type Appender, assertNever, defineSubscription } from "../../src/platform.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated } from "../orders/events.ts";
import { commitStock, releaseStock, reserveStock } from "./reservations.ts";

/**
 * stockOnOrderEvents keeps an order's stock in step with the order: reserve on `order.created`,
 * commit on `order.confirmed`, release on `order.cancelled`. One subscription for the three, so
 * that an order's events are handled in their order (partitions split by order id); several
 * partitions let orders for different products proceed in parallel.
 */
export const stockOnOrderEvents = (outbox: Appender) =>
  defineSubscription({
    name: "inventory.reservations",
    on: [OrderCreated, OrderConfirmed, OrderCancelled],
    partitions: 4,
    handler: async (event, { tx }) => {
      switch (event.type) {
        case "order.created":
          await reserveStock(tx, outbox, event.data.orderId, event.data.items);
          return;
        case "order.confirmed":
          await commitStock(tx, outbox, event.data.orderId);
          return;
        case "order.cancelled":
          await releaseStock(tx, outbox, event.data.orderId);
          return;
        default:
          assertNever(event);
      }
    },
  });
