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
import { type Appender, DomainError, defineSubscription, type EventEnvelope, type Tx } from "../../../src/platform.ts";
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

/** perform carries out one action; it returns a follow-up input when the world refused it. */
async function perform(deps: SagaDeps, tx: Tx, event: EventEnvelope, orderId: string, action: SagaAction): Promise<SagaInput | null> {
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
      await tx.execute(sql`
        insert into orders.saga_deadlines (order_id, kind, due_at, timeout_ms, causation_id, correlation_id, actor_id)
        values (${orderId}, 'payment', ${action.dueAt}::timestamptz, ${action.timeoutMs}, ${event.id}, ${event.correlationid}, ${event.actorid ?? null})
        on conflict (order_id, kind) do nothing`);
      return null;
    case "clearPaymentDeadline":
      await tx.execute(sql`delete from orders.saga_deadlines where order_id = ${orderId} and kind = 'payment'`);
      return null;
  }
}

/** orderSaga is the saga's subscription. */
export const orderSaga = (deps: SagaDeps) =>
  defineSubscription({
    name: "orders.saga",
    on: sagaEvents,
    partitions: 4,
    handler: async (event, { tx }) => {
      const orderId = event.data.orderId;
      const [row] = (await tx.execute(sql`select state from orders.sagas where order_id = ${orderId} for update`)) as unknown as { state: SagaState }[];
      const reaction = react(row?.state ?? null, { type: event.type, data: event.data, time: event.time } as SagaInput, deps.paymentTimeoutMs);
      // Nothing changed (a repeat, the saga's own confirmation coming back): nothing to write.
      if (!reaction.state || (reaction.state === row?.state && reaction.actions.length === 0)) return;
      let state = reaction.state;
      const { actions } = reaction;
      for (const action of actions) {
        const followUp = await perform(deps, tx, event, orderId, action);
        if (followUp) state = react(state, followUp, deps.paymentTimeoutMs).state!;
      }
      await tx.execute(sql`
        insert into orders.sagas (order_id, status, state) values (${orderId}, ${state.status}, ${JSON.stringify(state)}::jsonb)
        on conflict (order_id) do update set status = excluded.status, state = excluded.state, updated_at = now()`);
    },
  });
