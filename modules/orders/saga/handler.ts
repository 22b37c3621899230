/**
 * The order saga's runner: the `orders.saga` subscription keeps each order's saga state in
 * `orders.sagas` and performs what `react` decides, all in the delivery's transaction (with its
 * checkpoint): a confirmation or cancellation of the order (its stream and public events), and
 * the payment deadline row the timer fires. Events of one order arrive in the order the log is
 * read (partitions split by order id) and are handled under the row's lock. A redelivered or
 * replayed event is a no-op because every reaction moves a step on from an open status only (see
 * `react`). The log position is no guard here: events from different writers are read in
 * transaction order, which is not always position order.
 */
import { sql } from "drizzle-orm";
import { type Appender, DomainError, defineSubscription, type EventEnvelope, runWithEventContext, type Tx } from "../../../src/platform.ts";
import { InventoryReleased, InventoryReservationFailed, InventoryReserved } from "../../inventory/events.ts";
import { PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided } from "../../payments/events.ts";
import { now, type OrderAggregate, runOrderCommand } from "../commands.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated, OrderPaymentTimedOut } from "../events.ts";
import type { OrderCommand } from "../order.ts";
import { react, type SagaAction, type SagaInput, type SagaState } from "./process.ts";

/** SagaDeps are what the saga's runner needs. */
export interface SagaDeps {
  orders: OrderAggregate;
  outbox: Appender;
  /** How long a payment may stay unanswered before the saga treats it as failed. */
  paymentTimeoutMs: number;
  clock?: () => Date;
}

/** sagaEvents are the events the saga reacts to. */
export const sagaEvents = [
  OrderCreated,
  OrderConfirmed,
  OrderCancelled,
  InventoryReserved,
  InventoryReservationFailed,
  InventoryReleased,
  PaymentProcessed,
  PaymentFailed,
  PaymentRefunded,
  PaymentVoided,
  OrderPaymentTimedOut,
];

/** runOrder runs a command on the order in the delivery's transaction; false when the order's state refuses it. */
async function runOrder(deps: SagaDeps, tx: Tx, orderId: string, command: OrderCommand): Promise<boolean> {
  try {
    await runOrderCommand(deps.orders, deps.outbox, orderId, command, tx);
    return true;
  } catch (err) {
    // Refused before anything was written (a confirmation of an order the customer cancelled meanwhile).
    if (err instanceof DomainError && err.kind === "illegal_state") return false;
    throw err;
  }
}

/** Deadlines is what a batch's reactions did to payment deadlines, per order, written set-based at the end. */
interface Deadlines {
  /** Orders whose deadline row goes: cleared, or replaced by a later one in the same batch. */
  clear: Set<string>;
  /** The deadline each order ends the batch with, set by this batch. */
  set: Map<string, { dueAt: string; timeoutMs: number; event: EventEnvelope }>;
}

/** perform carries out one action; it returns a follow-up input when the world refused it. */
async function perform(deps: SagaDeps, tx: Tx, event: EventEnvelope, orderId: string, action: SagaAction, deadlines: Deadlines): Promise<SagaInput | null> {
  switch (action.type) {
    case "confirm":
      return (await runOrder(deps, tx, orderId, { type: "confirm", now: now(deps.clock) }))
        ? null
        : { type: "confirmation_refused", time: event.time, data: { orderId } };
    case "cancel":
      // Refused only when the order is already cancelled or shipped: nothing left to cancel.
      await runOrder(deps, tx, orderId, { type: "cancel", reason: action.reason, code: action.code, now: now(deps.clock) });
      return null;
    case "setPaymentDeadline":
      // A deadline cleared earlier in the batch is deleted first, so this one replaces it.
      deadlines.set.set(orderId, { dueAt: action.dueAt, timeoutMs: action.timeoutMs, event });
      return null;
    case "clearPaymentDeadline":
      deadlines.set.delete(orderId);
      deadlines.clear.add(orderId);
      return null;
  }
}

/** writeDeadlines deletes the cleared deadline rows, then inserts the new ones: one statement each, whatever the batch's size. */
async function writeDeadlines(tx: Tx, { clear, set }: Deadlines): Promise<void> {
  if (clear.size > 0) await tx.execute(sql`delete from orders.saga_deadlines where kind = 'payment' and order_id = any(${sql.param([...clear])}::uuid[])`);
  if (set.size === 0) return;
  const rows = [...set];
  const col = <T>(f: (r: (typeof rows)[number]) => T) => sql.param(rows.map(f));
  await tx.execute(sql`
    insert into orders.saga_deadlines (order_id, kind, due_at, timeout_ms, causation_id, correlation_id, actor_id)
    select order_id, 'payment', due_at::timestamptz, timeout_ms, causation_id, correlation_id, actor_id
    from unnest(${col(([id]) => id)}::uuid[], ${col(([, d]) => d.dueAt)}::text[], ${col(([, d]) => d.timeoutMs)}::int[],
                ${col(([, d]) => d.event.id)}::text[], ${col(([, d]) => d.event.correlationid)}::text[], ${col(([, d]) => d.event.actorid ?? null)}::text[])
      as u(order_id, due_at, timeout_ms, causation_id, correlation_id, actor_id)
    on conflict (order_id, kind) do nothing`);
}

/**
 * orderSaga is the saga's subscription, a batch at a time: one locking read of every saga the
 * batch concerns, the reactions in memory in the log's order (each order's commands run in
 * turn, with its event as their cause), then one upsert of the changed sagas and one statement
 * each for the deadlines cleared and set. A batch that throws is delivered again event by event.
 */
export const orderSaga = (deps: SagaDeps) =>
  defineSubscription({
    name: "orders.saga",
    on: sagaEvents,
    partitions: 4,
    handleBatch: async (events, { tx }) => {
      const ids = [...new Set(events.map((e) => e.data.orderId))].sort();
      // Locked in id order: a batch never waits on another holding a row it wants while holding one that one wants.
      const rows = (await tx.execute(
        sql`select order_id, state from orders.sagas where order_id = any(${sql.param(ids)}::uuid[]) order by order_id for update`,
      )) as unknown as { order_id: string; state: SagaState }[];
      const states = new Map(rows.map((r) => [r.order_id, r.state]));
      const changed = new Set<string>();
      const deadlines: Deadlines = { clear: new Set(), set: new Map() };
      for (const event of events) {
        const orderId = event.data.orderId;
        const prev = states.get(orderId) ?? null;
        const reaction = react(prev, { type: event.type, data: event.data, time: event.time } as SagaInput, deps.paymentTimeoutMs);
        // Nothing changed (a repeat, the saga's own confirmation coming back): nothing to write.
        if (!reaction.state || (reaction.state === prev && reaction.actions.length === 0)) continue;
        let state = reaction.state;
        if (reaction.actions.length > 0) {
          await runWithEventContext({ correlationId: event.correlationid, causationId: event.id, actorId: event.actorid }, async () => {
            for (const action of reaction.actions) {
              const followUp = await perform(deps, tx, event, orderId, action, deadlines);
              if (followUp) state = react(state, followUp, deps.paymentTimeoutMs).state!;
            }
          });
        }
        states.set(orderId, state);
        changed.add(orderId);
      }
      await writeDeadlines(tx, deadlines);
      if (changed.size === 0) return;
      const out = [...changed].sort().map((id) => states.get(id)!);
      await tx.execute(sql`
        insert into orders.sagas (order_id, status, state)
        select order_id, status, state::jsonb
        from unnest(${sql.param(out.map((s) => s.orderId))}::uuid[], ${sql.param(out.map((s) => s.status))}::text[],
                    ${sql.param(out.map((s) => JSON.stringify(s)))}::text[]) as u(order_id, status, state)
        on conflict (order_id) do update set status = excluded.status, state = excluded.state, updated_at = now()`);
    },
  });
