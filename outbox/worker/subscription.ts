import type { Logger } from "pino";
import { type Db, rawSql, type Tx, writeBehind } from "../../src/db/client.ts";
import { preparedQuery } from "../../src/db/driver-internals.ts";
import { declareNoAppends } from "../horizon.ts";
import type { Membership } from "../membership.ts";
import type { CompiledPattern } from "../pattern.ts";
import type { HandlerContext, OutboxMetrics, SubscriptionDefinition } from "../types.ts";
import type { Wakeup } from "../wakeup.ts";

/** EventHandler is a per-event handler's body (`handler`). */
export type EventHandler = NonNullable<SubscriptionDefinition["handler"]>;
/** BatchProjection is a batch projection's body (`handleBatch`). */
export type BatchProjection = NonNullable<SubscriptionDefinition["handleBatch"]>;
/** Relay is a relay's body (`batchHandler`), as the EventBridge and Kinesis sinks have. */
export type Relay = NonNullable<SubscriptionDefinition["batchHandler"]>;

/**
 * SubscriptionBody is which of the three kinds of body a subscription has, since each is
 * delivered its own way (`./per-event.ts`, `./projection.ts`, `./relay.ts`):
 *
 * - `per-event`, a **per-event handler** (`handler`): one event per call, all of a batch in the
 *   transaction that advances the checkpoint, so Postgres effects happen exactly once. The
 *   usual reaction of one module to another's event.
 * - `projection`, a **batch projection** (`handleBatch`): the whole batch in one call, in that
 *   same transaction, for read models that write many rows in one statement. A batch that
 *   throws is delivered again event by event, so only the poison event is retried.
 * - `relay`, a **relay** (`batchHandler`): the whole batch in one call, outside any transaction,
 *   to something outside Postgres (AWS). At least once: the checkpoint commits afterwards.
 */
export type SubscriptionBody =
  | { readonly kind: "per-event"; readonly handle: EventHandler }
  | { readonly kind: "projection"; readonly handle: BatchProjection }
  | { readonly kind: "relay"; readonly handle: Relay };

/** bodyOf names the body a definition gives, or returns null unless it gives exactly one. */
export function bodyOf(def: SubscriptionDefinition): SubscriptionBody | null {
  const { handler, handleBatch, batchHandler } = def;
  if ([handler, handleBatch, batchHandler].filter(Boolean).length !== 1) return null;
  if (handler) return { kind: "per-event", handle: handler };
  if (handleBatch) return { kind: "projection", handle: handleBatch };
  return { kind: "relay", handle: batchHandler! };
}

/** CompiledSubscription is a validated subscription definition with its matcher. */
export interface CompiledSubscription {
  readonly def: SubscriptionDefinition;
  readonly name: string;
  readonly body: SubscriptionBody;
  readonly matcher: CompiledPattern;
  readonly partitions: number;
  /** Events of different subjects a partition handles at once (per-event handlers; 1 otherwise). */
  readonly concurrency: number;
  readonly maxAttempts: number;
  readonly batchSize: number;
  /** The wait after a delivery that did not fill its batch (0: none). */
  readonly lingerMs: number;
  /** False when its deliveries declare that they append no events (`appends: false`). */
  readonly appends: boolean;
  readonly backoff: { baseMs: number; maxMs: number };
}

/** WorkerDeps is what a partition worker is given by the outbox. */
export interface WorkerDeps {
  db: Db;
  wakeup: Wakeup;
  membership: Membership;
  log: Logger;
  metrics: OutboxMetrics;
  processId: string;
  pollMs: number;
  leaseSeconds: number;
  /** Whether delivery transactions that append nothing commit without waiting for the WAL flush (`../durability.ts`). */
  relaxedCommit: boolean;
}

/** Partition is one subscription partition as this process runs it: what every part of its worker shares. */
export interface Partition {
  readonly sub: CompiledSubscription;
  readonly partition: number;
  readonly deps: WorkerDeps;
  /** Aborted when the worker stops, so a body that waits (a relay backing off) gives up at once. */
  readonly stopping: AbortSignal;
}

/** BatchOutcome is what one pass over a batch did: events moved past, and a backoff if one failed. */
export interface BatchOutcome {
  processed: number;
  retryInMs?: number;
  /**
   * The look that found the batch returned fewer events than the batch size: everything then
   * readable was in it. Anything since has rung the loop's signal, so it need not look again
   * before waiting (an empty look after every batch is a round trip and an index scan per batch).
   */
  exhausted?: boolean;
}

/**
 * deliveryTransaction runs `fn` in a new transaction on `p`'s pool: a delivery's transaction. For a
 * subscription defined with `appends: false` it first declares that the transaction appends no
 * events (`../horizon.ts`), before anything the body sends.
 *
 * Its statements run with generic plans (`plan_cache_mode = force_generic_plan`, for this
 * transaction only). A delivery's statements are key lookups and upserts batched with `= any($1)`
 * or `unnest($1)`, prepared once per connection; Postgres's default re-plans such a statement on
 * every run, since a generic plan's guess of ten array elements always looks dearer than the
 * custom plan for the one or two a delivery sends, and planning is then most of their cost (in the
 * commerce benchmark at 100 orders/s, it was about a ninth of Postgres's time in statements). A
 * body whose plan depends on its values can run `set local plan_cache_mode = auto` first.
 */
export function deliveryTransaction<T>(p: Partition, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return p.deps.db.transaction(async (tx) => {
    await writeBehind(tx, preparedQuery(tx, GENERIC_PLANS, "outbox_generic_plans"));
    if (!p.sub.appends) await declareNoAppends(tx);
    return fn(tx);
  });
}

const GENERIC_PLANS = { sql: "select set_config('plan_cache_mode', 'force_generic_plan', true)", params: [] as unknown[] };

/** handlerContext is what a body gets besides its events. */
export function handlerContext(p: Partition, tx: Tx, attempt: number): HandlerContext {
  return { tx, sql: rawSql(tx), subscription: p.sub.name, partition: p.partition, attempt, signal: p.stopping };
}

/**
 * poolAsTx hands a relay the pool instead of an open transaction: its writes (if any)
 * autocommit, and no connection is held while it waits on AWS.
 */
export function poolAsTx(p: Partition): Tx {
  return p.deps.db as unknown as Tx;
}
