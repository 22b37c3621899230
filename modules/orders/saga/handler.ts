/**
 * The order saga's runner: the `orders.saga` subscription keeps each order's saga state in
 * `orders.sagas` and performs what `react` decides, all in the delivery's transaction (with its
 * checkpoint): a confirmation or cancellation of the order (its stream and public events), and
 * the payment deadline row the timer fires. A batch costs the same few round trips whatever it
 * holds: the sagas' read and the order streams its commands need go out together, and
 * every write (the commands' appends, the deadlines, the sagas) is write-behind, checked at
 * commit; a version conflict there (a customer's cancellation meanwhile) fails the batch, which
 * is then delivered event by event and decides again on the stream as it is. Events of one order arrive in the order the log is
 * read (partitions split by order id, the subject of every event it reads), one batch of a
 * partition at a time (its fenced checkpoint advance; see `readSagas`). A redelivered or
 * replayed event is a no-op because every reaction moves a step on from an open status only (see
 * `react`). The log position is no guard here: events from different writers are read in
 * transaction order, which is not always position order.
 */
import { sql } from "drizzle-orm";
import {
  DomainError,
  defineSubscription,
  type EventEnvelope,
  type Loaded,
  loadStreams,
  prepared,
  runWithEventContext,
  type Tx,
  writeBehind,
} from "../../../src/platform.ts";
import { InventoryReleased, InventoryReservationFailed, InventoryReserved } from "../../inventory/events.ts";
import { PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided } from "../../payments/events.ts";
import { now, type OrderAggregate, runOrderCommand } from "../commands.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated, OrderPaymentTimedOut } from "../events.ts";
import type { OrderCommand, OrderState } from "../order.ts";
import { react, type SagaAction, type SagaInput, type SagaState } from "./process.ts";

/** SagaDeps are what the saga's runner needs. */
export interface SagaDeps {
  orders: OrderAggregate;
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

/** The event types whose reaction may be a command on the order (confirm or cancel): their orders' streams are read up front. */
const COMMANDING = new Set(["payment.processed", "inventory.reservation_failed", "payment.failed", "order-saga.payment_timed_out"]);

/**
 * runOrder runs a command on the order in the delivery's transaction, write-behind, on the stream
 * as the batch read it (an order's first command; a second one reads the stream again, which
 * then holds the first's events); false when the order's state refuses it.
 */
async function runOrder(deps: SagaDeps, tx: Tx, orderId: string, command: OrderCommand, streams: Map<string, Loaded<OrderState>>): Promise<boolean> {
  const loaded = streams.get(orderId);
  streams.delete(orderId);
  try {
    await runOrderCommand(deps.orders, orderId, command, tx, { loaded, writeBehind: true });
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

/** Batch is what a batch's reactions share: the order streams read up front and the deadlines to write. */
interface Batch {
  streams: Map<string, Loaded<OrderState>>;
  deadlines: Deadlines;
}

/** perform carries out one action; it returns a follow-up input when the world refused it. */
async function perform(
  deps: SagaDeps,
  tx: Tx,
  event: EventEnvelope,
  orderId: string,
  action: SagaAction,
  { streams, deadlines }: Batch,
): Promise<SagaInput | null> {
  switch (action.type) {
    case "confirm":
      return (await runOrder(deps, tx, orderId, { type: "confirm", now: now(deps.clock) }, streams))
        ? null
        : { type: "confirmation_refused", time: event.time, data: { orderId } };
    case "cancel":
      // Refused only when the order is already cancelled or shipped: nothing left to cancel.
      await runOrder(deps, tx, orderId, { type: "cancel", reason: action.reason, code: action.code, now: now(deps.clock) }, streams);
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

// A batch's statements, prepared (one round trip each, parsed once per connection): their text
// never depends on the batch, which travels as arrays.
//
// The sagas are read without a row lock. Only this subscription writes `orders.sagas`, an order's
// events all fall in one partition (each has the order's id as its subject), and a partition's batches commit only through the fenced
// checkpoint advance (`outbox/worker/lease.ts`): one at a time, each starting from what the last
// committed one left, so the state a batch reads is the one its events follow, and a zombie
// process's batch beside the lease holder's cannot commit. A lock would add nothing to that, and
// cost: a row lock gives the transaction a transaction id at once, and while it is open (the
// reads' round trip, the reactions, the writes' round trip) every reader of the log waits behind
// it (the read horizon). Unlocked, the transaction takes its id with the writes, in the COMMIT's packet.
const readSagas = prepared(
  "orders_saga_read",
  ["ids"],
  (_, $) => sql`select order_id, state from orders.sagas where order_id = any(${$.ids}::uuid[])`,
).returns<{ order_id: string; state: SagaState }>();
const deleteDeadlines = prepared(
  "orders_saga_deadlines_delete",
  ["ids"],
  (_, $) => sql`delete from orders.saga_deadlines where kind = 'payment' and order_id = any(${$.ids}::uuid[])`,
);
const insertDeadlines = prepared(
  "orders_saga_deadlines_insert",
  ["ids", "dueAts", "timeouts", "causations", "correlations", "actors"],
  (_, $) => sql`
    insert into orders.saga_deadlines (order_id, kind, due_at, timeout_ms, causation_id, correlation_id, actor_id)
    select order_id, 'payment', due_at::timestamptz, timeout_ms, causation_id, correlation_id, actor_id
    from unnest(${$.ids}::uuid[], ${$.dueAts}::text[], ${$.timeouts}::int[], ${$.causations}::text[], ${$.correlations}::text[], ${$.actors}::text[])
      as u(order_id, due_at, timeout_ms, causation_id, correlation_id, actor_id)
    on conflict (order_id, kind) do nothing`,
);
const upsertSagas = prepared(
  "orders_saga_upsert",
  ["ids", "statuses", "states"],
  (_, $) => sql`
    insert into orders.sagas (order_id, status, state)
    select order_id, status, state::jsonb from unnest(${$.ids}::uuid[], ${$.statuses}::text[], ${$.states}::text[]) as u(order_id, status, state)
    on conflict (order_id) do update set status = excluded.status, state = excluded.state, updated_at = now()`,
);

/** writeDeadlines deletes the cleared deadline rows, then inserts the new ones: one statement each, whatever the batch's size, write-behind. */
async function writeDeadlines(tx: Tx, { clear, set }: Deadlines): Promise<void> {
  if (clear.size > 0) await writeBehind(tx, deleteDeadlines.execute(tx, { ids: [...clear] }));
  if (set.size === 0) return;
  const rows = [...set];
  const col = <T>(f: (r: (typeof rows)[number]) => T) => rows.map(f);
  const insert = insertDeadlines.execute(tx, {
    ids: col(([id]) => id),
    dueAts: col(([, d]) => d.dueAt),
    timeouts: col(([, d]) => d.timeoutMs),
    causations: col(([, d]) => d.event.id),
    correlations: col(([, d]) => d.event.correlationid),
    actors: col(([, d]) => d.event.actorid ?? null),
  });
  await writeBehind(tx, insert);
}

/**
 * orderSaga is the saga's subscription, a batch at a time: one read of every saga the
 * batch concerns (with, in the same round trip, the streams of the orders it may command), the
 * reactions in memory in the log's order (each order's commands decided in turn, with its event
 * as their cause), then one upsert of the changed sagas and one statement each for the
 * deadlines cleared and set. A batch that throws is delivered again event by event.
 */
export const orderSaga = (deps: SagaDeps) =>
  defineSubscription({
    name: "orders.saga",
    on: sagaEvents,
    partitions: 4,
    handleBatch: async (events, { tx }) => {
      const ids = [...new Set(events.map((e) => e.data.orderId))].sort();
      const commanded = [...new Set(events.filter((e) => COMMANDING.has(e.type)).map((e) => e.data.orderId))];
      const [rows, streams] = await Promise.all([readSagas.execute(tx, { ids }), loadStreams(deps.orders, tx, commanded)]);
      const states = new Map(rows.map((r) => [r.order_id, r.state]));
      const changed = new Set<string>();
      const deadlines: Deadlines = { clear: new Set(), set: new Map() };
      const batch: Batch = { streams, deadlines };
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
              const followUp = await perform(deps, tx, event, orderId, action, batch);
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
      const upsert = upsertSagas.execute(tx, { ids: out.map((s) => s.orderId), statuses: out.map((s) => s.status), states: out.map((s) => JSON.stringify(s)) });
      await writeBehind(tx, upsert);
    },
  });
