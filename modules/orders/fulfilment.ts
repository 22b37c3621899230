/**
 * The order's fulfilment process, reacting to inventory's outcome: a reservation that failed
 * cancels the order with the reason; a reservation that succeeded confirms it.
 *
 * TODO(#9): payments sit between reservation and confirmation (charge on `inventory.reserved`,
 * confirm on `payment.processed`, release and cancel on `payment.failed` or a timeout) as a
 * durable saga with its own stream; until the payments module lands, stock reserved confirms.
 */
import { type Appender, DomainError, defineSubscription } from "../../src/platform.ts";
import { InventoryReservationFailed, InventoryReserved } from "../inventory/events.ts";
import { now, type OrderAggregate, runOrderCommand } from "./commands.ts";

/** cancellationReason says in words why inventory refused an order. */
export function cancellationReason(
  event: { reason: "product_not_found" } | { reason: "insufficient_stock"; lines: { productId: string; requested: number; available: number }[] },
): string {
  if (event.reason === "product_not_found") return "a product in the order no longer exists";
  return `out of stock: ${event.lines.map((l) => `${l.productId} (requested ${l.requested}, available ${l.available})`).join(", ")}`;
}

/** fulfilmentOnInventory confirms or cancels an order from inventory's answer, in the delivery's transaction. */
export const fulfilmentOnInventory = (orders: OrderAggregate, outbox: Appender, clock?: () => Date) =>
  defineSubscription({
    name: "orders.fulfilment",
    on: [InventoryReserved, InventoryReservationFailed],
    partitions: 4,
    handler: async (event, { tx }) => {
      const command =
        event.type === "inventory.reserved"
          ? { type: "confirm" as const, now: now(clock) }
          : { type: "cancel" as const, reason: cancellationReason(event.data), now: now(clock) };
      try {
        await runOrderCommand(orders, outbox, event.data.orderId, command, tx);
      } catch (err) {
        // The customer cancelled meanwhile (confirming a cancelled order is refused before anything
        // is written): the cancellation already released the stock, so there is nothing to do.
        if (err instanceof DomainError && err.kind === "illegal_state") return;
        throw err;
      }
    },
  });
