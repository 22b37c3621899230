/**
 * Payments follow each order's events (choreography: payments never call orders):
 *
 * - `order.created` opens the order's payment (`pending`) with its total, currency, method and
 *   customer: what the charge needs later.
 * - `inventory.reserved` charges it once: the row is locked and moves from `pending` only, and the
 *   processor gets the order id as idempotency key. The processor's call is bounded
 *   (`callTimeoutMs`); no answer in time leaves the payment `unanswered` and publishes nothing,
 *   and the order saga's own deadline treats it as failed.
 * - `order.cancelled` refunds a processed payment once (`payment.refunded`), or calls off one that
 *   took no money (`payment.voided`); a cancellation seen before the reservation leaves the
 *   payment voided, so a late `inventory.reserved` charges nothing.
 *
 * Everything runs in the delivery's transaction, with its checkpoint; a redelivery finds the
 * status moved on and does nothing.
 */
import { randomUUIDv7 } from "bun";
import { sql } from "drizzle-orm";
import { type Appender, assertNever, defineSubscription, type Tx } from "../../src/platform.ts";
import { InventoryReserved } from "../inventory/events.ts";
import { OrderCancelled, OrderCreated } from "../orders/events.ts";
import { PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided } from "./events.ts";
import { bounded, CALL_TIMEOUT, type PaymentProvider } from "./provider.ts";

/** ChargeDeps are what the payment handlers need. */
export interface ChargeDeps {
  outbox: Appender;
  provider: PaymentProvider;
  /** How long one call to the processor may take inside a delivery before it counts as unanswered. */
  callTimeoutMs: number;
}

interface PaymentRow {
  id: string;
  order_id: string;
  customer_id: string;
  amount_cents: number;
  currency: string;
  payment_method: string;
  status: "pending" | "processed" | "failed" | "unanswered" | "refunded" | "voided";
  charge_id: string | null;
}

const lockPayment = async (tx: Tx, orderId: string) =>
  (
    (await tx.execute(sql`
    select id, order_id, customer_id, amount_cents, currency, payment_method, status, charge_id
    from payments.payments where order_id = ${orderId} for update`)) as unknown as PaymentRow[]
  )[0];

/** openPayment records what an order will be charged; a second delivery changes nothing. */
export async function openPayment(
  tx: Tx,
  o: { orderId: string; customerId: string; totalCents: number; currency: string; paymentMethod: string },
): Promise<void> {
  await tx.execute(sql`
    insert into payments.payments (order_id, id, customer_id, amount_cents, currency, payment_method, status)
    values (${o.orderId}, ${randomUUIDv7()}, ${o.customerId}, ${o.totalCents}, ${o.currency}, ${o.paymentMethod}, 'pending')
    on conflict (order_id) do nothing`);
}

/** ChargeOutcome says what chargeOrder did. */
export type ChargeOutcome = "processed" | "failed" | "unanswered" | "already_handled";

/** chargeOrder charges an order's total once, when its stock is reserved. */
export async function chargeOrder(tx: Tx, deps: ChargeDeps, orderId: string): Promise<ChargeOutcome> {
  const p = await lockPayment(tx, orderId);
  // No payment opened: `order.created` is delivered before the reservation it causes, so this is a bug.
  if (!p) throw new Error(`payments: stock reserved for order ${orderId}, whose payment was never opened`);
  if (p.status !== "pending") return "already_handled";
  const answer = await bounded(deps.callTimeoutMs, (signal) =>
    deps.provider.charge(
      {
        idempotencyKey: orderId,
        amountCents: p.amount_cents,
        currency: p.currency,
        paymentMethod: p.payment_method,
        metadata: { orderId, customerId: p.customer_id },
      },
      signal,
    ),
  );
  const common = { orderId, customerId: p.customer_id, paymentId: p.id, amountCents: p.amount_cents, currency: p.currency };
  if (answer === CALL_TIMEOUT) {
    await tx.execute(sql`update payments.payments set status = 'unanswered', updated_at = now() where order_id = ${orderId}`);
    return "unanswered";
  }
  if (answer.status === "failed") {
    await tx.execute(sql`
      update payments.payments set status = 'failed', failure_reason = ${answer.reason}, failure_message = ${answer.message}, updated_at = now()
      where order_id = ${orderId}`);
    await deps.outbox.append(tx, [PaymentFailed.with({ ...common, reason: answer.reason, message: answer.message }, { subject: orderId })]);
    return "failed";
  }
  await tx.execute(sql`
    update payments.payments set status = 'processed', charge_id = ${answer.chargeId}, processed_at = now(), updated_at = now()
    where order_id = ${orderId}`);
  await deps.outbox.append(tx, [PaymentProcessed.with({ ...common, paymentMethod: p.payment_method, chargeId: answer.chargeId }, { subject: orderId })]);
  return "processed";
}

/** SettleOutcome says what settleCancelledOrder did. */
export type SettleOutcome = "refunded" | "voided" | "nothing_to_do";

/** settleCancelledOrder refunds a cancelled order's charge once, or calls off a payment that took no money. */
export async function settleCancelledOrder(tx: Tx, deps: ChargeDeps, orderId: string): Promise<SettleOutcome> {
  const p = await lockPayment(tx, orderId);
  if (!p) throw new Error(`payments: order ${orderId} was cancelled, but its payment was never opened`);
  const common = { orderId, customerId: p.customer_id, paymentId: p.id };
  if (p.status === "pending" || p.status === "unanswered") {
    await tx.execute(sql`update payments.payments set status = 'voided', updated_at = now() where order_id = ${orderId}`);
    await deps.outbox.append(tx, [PaymentVoided.with(common, { subject: orderId })]);
    return "voided";
  }
  if (p.status !== "processed") return "nothing_to_do";
  const answer = await bounded(deps.callTimeoutMs, (signal) =>
    deps.provider.refund({ idempotencyKey: `refund-${orderId}`, chargeId: p.charge_id!, amountCents: p.amount_cents }, signal),
  );
  // The refund is owed: an unanswered or refused call fails the delivery, which is retried (same key).
  if (answer === CALL_TIMEOUT) throw new Error(`payments: the refund of order ${orderId} was not answered within ${deps.callTimeoutMs} ms`);
  if (answer.status === "failed") throw new Error(`payments: the refund of order ${orderId} was refused: ${answer.message}`);
  await tx.execute(sql`
    update payments.payments set status = 'refunded', refund_id = ${answer.refundId}, refunded_at = now(), updated_at = now()
    where order_id = ${orderId}`);
  await deps.outbox.append(tx, [
    PaymentRefunded.with({ ...common, amountCents: p.amount_cents, currency: p.currency, refundId: answer.refundId }, { subject: orderId }),
  ]);
  return "refunded";
}

/**
 * paymentsOnOrderEvents is the payments subscription: one for the three events so that an
 * order's events are handled in their order (partitions split by order id).
 */
export const paymentsOnOrderEvents = (deps: ChargeDeps) =>
  defineSubscription({
    name: "payments.charges",
    on: [OrderCreated, InventoryReserved, OrderCancelled],
    partitions: 4,
    handler: async (event, { tx }) => {
      switch (event.type) {
        case "order.created":
          await openPayment(tx, event.data);
          return;
        case "inventory.reserved":
          await chargeOrder(tx, deps, event.data.orderId);
          return;
        case "order.cancelled":
          await settleCancelledOrder(tx, deps, event.data.orderId);
          return;
        default:
          assertNever(event);
      }
    },
  });
