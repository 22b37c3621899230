/**
 * The saga timer: fires the durable deadlines in `orders.saga_deadlines`. Each round claims the
 * rows due with `for update skip locked` (so any number of processes can run it, none firing a
 * row another holds), appends an `order-saga.payment_timed_out` event for each with the
 * lineage of the event that set it (same correlation id), and deletes them, in one transaction:
 * a deadline fires once, and one set before a restart fires after it. The saga's subscription
 * then handles the timeout like any other event (and ignores it if the payment answered first).
 */
import { sql } from "drizzle-orm";
import type { Appender, BackgroundTask, Db } from "../../../src/platform.ts";
import { OrderPaymentTimedOut } from "../events.ts";

const BATCH = 200;

interface DueRow {
  order_id: string;
  due_at: string;
  timeout_ms: number;
  causation_id: string;
  correlation_id: string;
  actor_id: string | null;
}

/** fireDueDeadlines fires up to 200 due deadlines in one transaction; returns how many. */
export async function fireDueDeadlines(db: Db, outbox: Appender): Promise<number> {
  return db.transaction(async (tx) => {
    const due = (await tx.execute(sql`
      with due as (
        select order_id, kind from orders.saga_deadlines where due_at <= now() order by due_at limit ${BATCH} for update skip locked
      )
      delete from orders.saga_deadlines d using due where d.order_id = due.order_id and d.kind = due.kind
      returning d.order_id, to_char(d.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as due_at, d.timeout_ms,
        d.causation_id, d.correlation_id, d.actor_id`)) as unknown as DueRow[];
    if (due.length === 0) return 0;
    await outbox.append(
      tx,
      due.map((d) =>
        OrderPaymentTimedOut.with(
          { orderId: d.order_id, dueAt: d.due_at, timeoutMs: d.timeout_ms },
          { subject: d.order_id, causedBy: { id: d.causation_id, correlationid: d.correlation_id, actorid: d.actor_id ?? undefined } },
        ),
      ),
    );
    return due.length;
  });
}

/**
 * sagaTimer is the background loop that fires deadlines every `intervalMs` (sooner while a round
 * finds a full batch). A failed round (the database away) is reported and retried next tick.
 */
export function sagaTimer(deps: { db: Db; outbox: Appender; intervalMs: number; onError?: (err: unknown) => void }): BackgroundTask {
  let stopped = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  return {
    name: "orders.saga-timer",
    start() {
      if (loop) return;
      stopped = false;
      loop = (async () => {
        while (!stopped) {
          let fired = 0;
          try {
            fired = await fireDueDeadlines(deps.db, deps.outbox);
          } catch (err) {
            if (!stopped) deps.onError?.(err);
          }
          if (fired === BATCH || stopped) continue;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, deps.intervalMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      })();
    },
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      loop = undefined;
    },
  };
}
