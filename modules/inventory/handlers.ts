import { type Appender, assertNever, defineSubscription } from "../../src/platform.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated } from "../orders/events.ts";
import { applyStock, type StockStep } from "./reservations.ts";

/**
 * stockOnOrderEvents keeps an order's stock in step with the order: reserve on `order.created`,
 * commit on `order.confirmed`, release on `order.cancelled`. One subscription for the three, so
 * that an order's events are handled in their order (partitions split by order id); several
 * partitions let orders proceed in parallel.
 *
 * A batch runs in one transaction, so the product rows its events lock stay locked until it
 * commits. Locked event by event, two partitions' batches could take two products in opposite
 * orders and deadlock; so a batch locks every product it will touch, in one statement in id
 * order, and batches queue on the first product they share instead. The whole batch costs a few
 * set-based statements (`applyStock`), so those locks are held briefly.
 */
export const stockOnOrderEvents = (outbox: Appender) =>
  defineSubscription({
    name: "inventory.reservations",
    on: [OrderCreated, OrderConfirmed, OrderCancelled],
    partitions: 4,
    handleBatch: async (events, { tx }) => {
      await applyStock(
        tx,
        outbox,
        events.map((event): StockStep => {
          switch (event.type) {
            case "order.created":
              return { kind: "reserve", orderId: event.data.orderId, lines: event.data.items, causedBy: event };
            case "order.confirmed":
              return { kind: "commit", orderId: event.data.orderId, causedBy: event };
            case "order.cancelled":
              return { kind: "release", orderId: event.data.orderId, causedBy: event };
            default:
              return assertNever(event);
          }
        }),
      );
    },
  });
