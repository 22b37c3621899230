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
 * status moved on and does nothing. A batch at a time: one insert opens the batch's payments, one
 * locking read takes the rows its other events concern, each order's events are then applied in
 * the log's order to its row in memory (the processor calls of different orders run side by side,
 * so the transaction is held open for the slowest call, not for their sum), and one update and one
 * append write the outcome.
 */
import { randomUUIDv7 } from "bun";
import { sql } from "drizzle-orm";
import {
  type Appender,
  assertNever,
  defineSubscription,
  type EnvelopeOf,
  type EventEnvelope,
  type NewEvent,
  prepared,
  type Tx,
  writeBehind,
} from "../../src/platform.ts";
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

/** PaymentChange is what happened to a payment row in a batch, to be written in one statement. */
interface PaymentChange {
  chargeId?: string;
  refundId?: string;
  failureReason?: string;
  failureMessage?: string;
  processed?: boolean;
  refunded?: boolean;
}

type PaymentEvent = EnvelopeOf<typeof OrderCreated> | EnvelopeOf<typeof InventoryReserved> | EnvelopeOf<typeof OrderCancelled>;

// A batch's statements, prepared (one round trip each, parsed once per connection): their text
// never depends on the batch, which travels as arrays.
const insertPayments = prepared(
  "payments_open",
  ["orderIds", "ids", "customerIds", "amounts", "currencies", "methods"],
  (_, $) => sql`
    insert into payments.payments (order_id, id, customer_id, amount_cents, currency, payment_method, status)
    select order_id, id, customer_id, amount_cents, currency, payment_method, 'pending'
    from unnest(${$.orderIds}::uuid[], ${$.ids}::uuid[], ${$.customerIds}::uuid[], ${$.amounts}::int[], ${$.currencies}::text[], ${$.methods}::text[])
      as u(order_id, id, customer_id, amount_cents, currency, payment_method)
    order by order_id
    on conflict (order_id) do nothing`,
);
const lockPayments = prepared(
  "payments_lock",
  ["orderIds"],
  (_, $) => sql`
    select id, order_id, customer_id, amount_cents, currency, payment_method, status, charge_id
    from payments.payments where order_id = any(${$.orderIds}::uuid[]) order by order_id for update`,
).returns<PaymentRow>();
// Flags travel as text: postgres.js does not send a boolean[] parameter that Postgres takes.
const updatePayments = prepared(
  "payments_update",
  ["orderIds", "statuses", "chargeIds", "refundIds", "failureReasons", "failureMessages", "processed", "refunded"],
  (_, $) => sql`
    update payments.payments p
       set status = u.status, charge_id = coalesce(u.charge_id, p.charge_id), refund_id = coalesce(u.refund_id, p.refund_id),
           failure_reason = coalesce(u.failure_reason, p.failure_reason), failure_message = coalesce(u.failure_message, p.failure_message),
           processed_at = case when u.processed::boolean then now() else p.processed_at end,
           refunded_at = case when u.refunded::boolean then now() else p.refunded_at end,
           updated_at = now()
      from unnest(${$.orderIds}::uuid[], ${$.statuses}::text[], ${$.chargeIds}::text[], ${$.refundIds}::text[], ${$.failureReasons}::text[],
                  ${$.failureMessages}::text[], ${$.processed}::text[], ${$.refunded}::text[])
        as u(order_id, status, charge_id, refund_id, failure_reason, failure_message, processed, refunded)
     where p.order_id = u.order_id`,
);

/**
 * openPayments records what the batch's orders will be charged, in one statement; a second
 * delivery changes nothing. Write-behind: the locking read that follows goes out with it.
 */
async function openPayments(tx: Tx, opened: EnvelopeOf<typeof OrderCreated>[]): Promise<void> {
  if (opened.length === 0) return;
  const col = <T>(f: (d: (typeof opened)[number]["data"]) => T) => opened.map((e) => f(e.data));
  const statement = insertPayments.execute(tx, {
    orderIds: col((d) => d.orderId),
    ids: opened.map(() => randomUUIDv7()),
    customerIds: col((d) => d.customerId),
    amounts: col((d) => d.totalCents),
    currencies: col((d) => d.currency),
    methods: col((d) => d.paymentMethod),
  });
  await writeBehind(tx, statement);
}

/** ChargeOutcome says what chargeOrder did. */
export type ChargeOutcome = "processed" | "failed" | "unanswered" | "already_handled";

/** chargeOrder charges an order's total once, when its stock is reserved: `p` moves on, and the event to publish is returned. */
async function chargeOrder(
  deps: ChargeDeps,
  p: PaymentRow,
  change: PaymentChange,
  cause: EventEnvelope,
): Promise<{ outcome: ChargeOutcome; event?: NewEvent }> {
  if (p.status !== "pending") return { outcome: "already_handled" };
  const orderId = p.order_id;
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
  const meta = { subject: orderId, causedBy: cause };
  if (answer === CALL_TIMEOUT) {
    p.status = "unanswered";
    return { outcome: "unanswered" };
  }
  if (answer.status === "failed") {
    p.status = "failed";
    change.failureReason = answer.reason;
    change.failureMessage = answer.message;
    return { outcome: "failed", event: PaymentFailed.with({ ...common, reason: answer.reason, message: answer.message }, meta) };
  }
  p.status = "processed";
  p.charge_id = answer.chargeId;
  change.chargeId = answer.chargeId;
  change.processed = true;
  return { outcome: "processed", event: PaymentProcessed.with({ ...common, paymentMethod: p.payment_method, chargeId: answer.chargeId }, meta) };
}

/** SettleOutcome says what settleCancelledOrder did. */
export type SettleOutcome = "refunded" | "voided" | "nothing_to_do";

/** settleCancelledOrder refunds a cancelled order's charge once, or calls off a payment that took no money. */
async function settleCancelledOrder(
  deps: ChargeDeps,
  p: PaymentRow,
  change: PaymentChange,
  cause: EventEnvelope,
): Promise<{ outcome: SettleOutcome; event?: NewEvent }> {
  const orderId = p.order_id;
  const common = { orderId, customerId: p.customer_id, paymentId: p.id };
  const meta = { subject: orderId, causedBy: cause };
  if (p.status === "pending" || p.status === "unanswered") {
    p.status = "voided";
    return { outcome: "voided", event: PaymentVoided.with(common, meta) };
  }
  if (p.status !== "processed") return { outcome: "nothing_to_do" };
  const answer = await bounded(deps.callTimeoutMs, (signal) =>
    deps.provider.refund({ idempotencyKey: `refund-${orderId}`, chargeId: p.charge_id!, amountCents: p.amount_cents }, signal),
  );
  // The refund is owed: an unanswered or refused call fails the delivery, which is retried (same key).
  if (answer === CALL_TIMEOUT) throw new Error(`payments: the refund of order ${orderId} was not answered within ${deps.callTimeoutMs} ms`);
  if (answer.status === "failed") throw new Error(`payments: the refund of order ${orderId} was refused: ${answer.message}`);
  p.status = "refunded";
  change.refundId = answer.refundId;
  change.refunded = true;
  return {
    outcome: "refunded",
    event: PaymentRefunded.with({ ...common, amountCents: p.amount_cents, currency: p.currency, refundId: answer.refundId }, meta),
  };
}

/** applyOrderEvents applies one order's events of the batch, in order, to its locked row; returns the events to publish, in order. */
async function applyOrderEvents(deps: ChargeDeps, p: PaymentRow | undefined, events: PaymentEvent[], change: PaymentChange): Promise<NewEvent[]> {
  const out: NewEvent[] = [];
  for (const event of events) {
    switch (event.type) {
      case "order.created":
        break; // opened before the rows were locked
      case "inventory.reserved": {
        // No payment opened: `order.created` is delivered before the reservation it causes, so this is a bug.
        if (!p) throw new Error(`payments: stock reserved for order ${event.data.orderId}, whose payment was never opened`);
        const { event: e } = await chargeOrder(deps, p, change, event);
        if (e) out.push(e);
        break;
      }
      case "order.cancelled": {
        if (!p) throw new Error(`payments: order ${event.data.orderId} was cancelled, but its payment was never opened`);
        const { event: e } = await settleCancelledOrder(deps, p, change, event);
        if (e) out.push(e);
        break;
      }
      default:
        assertNever(event);
    }
  }
  return out;
}

/** writeChanges records the batch's changed payments in one statement, write-behind (it travels with the COMMIT). */
async function writeChanges(tx: Tx, changed: { row: PaymentRow; change: PaymentChange }[]): Promise<void> {
  if (changed.length === 0) return;
  const col = <T>(f: (c: (typeof changed)[number]) => T) => changed.map(f);
  const statement = updatePayments.execute(tx, {
    orderIds: col((c) => c.row.order_id),
    statuses: col((c) => c.row.status),
    chargeIds: col((c) => c.change.chargeId ?? null),
    refundIds: col((c) => c.change.refundId ?? null),
    failureReasons: col((c) => c.change.failureReason ?? null),
    failureMessages: col((c) => c.change.failureMessage ?? null),
    processed: col((c) => String(c.change.processed === true)),
    refunded: col((c) => String(c.change.refunded === true)),
  });
  await writeBehind(tx, statement);
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
    handleBatch: async (events, { tx }) => {
      const byOrder = new Map<string, PaymentEvent[]>();
      for (const e of events) {
        if (e.type === "order.created") continue;
        const list = byOrder.get(e.data.orderId);
        if (list) list.push(e);
        else byOrder.set(e.data.orderId, [e]);
      }
      // The opening insert is write-behind: it goes out with the locking read (which, after it on
      // the connection, sees the payments it opened), or with the COMMIT.
      await openPayments(
        tx,
        events.filter((e): e is EnvelopeOf<typeof OrderCreated> => e.type === "order.created"),
      );
      if (byOrder.size === 0) return;
      // Locked in id order, so two batches never wait on each other's rows in opposite orders.
      const rows = await lockPayments.execute(tx, { orderIds: [...byOrder.keys()].sort() });
      const locked = new Map(rows.map((r) => [r.order_id, r]));
      // Each order's events in turn; different orders side by side (their processor calls overlap).
      const orders = [...byOrder].map(([orderId, list]) => ({
        row: locked.get(orderId),
        before: locked.get(orderId)?.status,
        list,
        change: {} as PaymentChange,
      }));
      const published = await Promise.all(orders.map((o) => applyOrderEvents(deps, o.row, o.list, o.change)));
      await writeChanges(
        tx,
        orders.filter((o) => o.row && o.row.status !== o.before).map((o) => ({ row: o.row!, change: o.change })),
      );
      // In the log's order of their causes, as one append.
      const rank = new Map(events.map((e, i) => [e.id, i]));
      const out = published.flat().sort((a, b) => (rank.get(a.causedBy!.id) ?? 0) - (rank.get(b.causedBy!.id) ?? 0));
      if (out.length > 0) await deps.outbox.append(tx, out);
    },
  });
