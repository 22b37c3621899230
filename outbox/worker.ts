import { randomUUIDv7 } from "bun";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { type Db, rawSql, settleWriteBehind, type Tx, writeBehindCause } from "../src/db/client.ts";
import { runWithEventContext } from "./context.ts";
import { DeliveryDeferredError } from "./errors.ts";
import type { EventContext, EventEnvelope } from "./envelope.ts";
import type { CompiledPattern } from "./pattern.ts";
import { EVENT_COLUMNS, type EventRow, executePrepared, toEnvelope } from "./store.ts";
import type { BatchResult, HandlerContext, OutboxMetrics, SubscriptionDefinition } from "./types.ts";
import { partitionOf } from "./hashtext.ts";
import type { Membership } from "./membership.ts";
import type { WakeSignal, Wakeup } from "./wakeup.ts";

/** CompiledSubscription is a validated subscription definition with its matcher. */
export interface CompiledSubscription {
  readonly def: SubscriptionDefinition;
  readonly name: string;
  readonly matcher: CompiledPattern;
  readonly partitions: number;
  readonly maxAttempts: number;
  readonly batchSize: number;
  readonly backoff: { baseMs: number; maxMs: number };
}

export interface WorkerDeps {
  db: Db;
  wakeup: Wakeup;
  membership: Membership;
  log: Logger;
  metrics: OutboxMetrics;
  processId: string;
  pollMs: number;
  leaseSeconds: number;
}

interface Checkpoint {
  last_transaction_id: string;
  last_position: string;
  status: "active" | "paused";
  lease_owner: string | null;
  failing_position: string | null;
  failing_attempts: number;
  start_snapshot: string | null;
}

/**
 * StartSnapshot is the snapshot a `startFrom: "now"` subscription was created in
 * (`xmin:xmax:xip,...`). Its checkpoint starts at `xmin`, below every transaction then in flight,
 * so their events are delivered; the events of transactions it shows as committed were in the
 * log before the subscription and are skipped. Past `xmax` it has nothing more to say.
 */
class StartSnapshot {
  readonly xmax: bigint;
  readonly #xmin: bigint;
  readonly #inFlight: ReadonlySet<bigint>;

  constructor(readonly text: string) {
    const [xmin, xmax, xip = ""] = text.split(":");
    this.#xmin = BigInt(xmin!);
    this.xmax = BigInt(xmax!);
    this.#inFlight = new Set(xip ? xip.split(",").map(BigInt) : []);
  }

  /** committedBefore says whether a transaction had committed when the snapshot was taken. */
  committedBefore(transactionId: string): boolean {
    const t = BigInt(transactionId);
    return t < this.#xmin || (t < this.xmax && !this.#inFlight.has(t));
  }
}

const rows = <T>(r: unknown) => r as T[];

/** backoffMs is exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * errorText is how a failure is stored (dead letters, last error): the root cause first, since
 * drizzle wraps a driver error in "Failed query: <sql> params: ..." and keeps the reason (a
 * violated constraint, say) in `cause`.
 */
function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, 4000);
  const own = `${err.name}: ${err.message}`;
  const cause = err.cause;
  const text = cause instanceof Error ? `${cause.name}: ${cause.message} (in ${own})` : own;
  return text.slice(0, 4000);
}

/**
 * PartitionWorker runs one subscription partition in this process. It holds a lease so other
 * processes leave the partition alone, and it commits each batch's handler effects together
 * with the checkpoint under a row lock, so Postgres effects happen exactly once.
 */
export class PartitionWorker {
  #stopped = false;
  #leased = false;
  #running: Promise<void> | undefined;
  #lastRenew = 0;
  #signal: WakeSignal | undefined;
  #lastRedriveAt = 0;
  #interrupt: (() => void) | undefined;
  // Handed to handlers as ctx.signal: a sink backing off through an outage stops at once.
  readonly #abort = new AbortController();

  constructor(
    readonly sub: CompiledSubscription,
    readonly partition: number,
    readonly deps: WorkerDeps,
  ) {}

  start(): void {
    this.#running ??= this.#loop();
  }

  /** stop lets the current batch finish, then releases the lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort(new Error("the worker is stopping"));
    this.#interrupt?.();
    this.#signal?.fire();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const { wakeup, pollMs, log } = this.deps;
    const types = this.sub.matcher.types;
    // Rung only by appends of a type this subscription reads, in this partition.
    this.#signal = wakeup.register((e) => (types === null || types.includes(e.type)) && partitionOf(e.subject, this.sub.partitions) === this.partition);
    const signal = this.#signal;
    let burstUntil = 0;
    while (!this.#stopped) {
      const woken = signal.consume();
      let progressed = false;
      let delay = pollMs;
      try {
        if (!(await this.#ensureLease())) {
          // The partition is another process's, or still leased by one that is handing it over:
          // look again at the next poll (an in-memory check, or one update when assigned here).
          await this.#sleep(Math.min(pollMs, (this.deps.leaseSeconds * 1000) / 2));
          continue;
        }
        // Redrive requests are rare: look for them when nudged (not on every append) or once
        // per poll interval.
        if (signal.consumeNudge() || Date.now() - this.#lastRedriveAt > pollMs) {
          this.#lastRedriveAt = Date.now();
          await this.#redriveRequested();
        }
        const outcome = await this.processBatch();
        progressed = outcome.processed > 0;
        if (outcome.retryInMs !== undefined) delay = outcome.retryInMs;
      } catch (err) {
        log.error({ err, subscription: this.sub.name, partition: this.partition }, "subscription worker error");
        delay = Math.min(pollMs, 1000);
      }
      if (this.#stopped) break;
      if (progressed) continue;
      if (delay !== pollMs) {
        // A backoff: appends must not cut it short.
        await this.#sleep(delay);
        continue;
      }
      // Right after a wake an append may still sit behind an older open transaction; look
      // again soon for a short while (or at the next commit's wake) instead of a whole poll.
      if (woken) burstUntil = Date.now() + 250;
      await signal.wait(Date.now() < burstUntil ? 5 : pollMs);
    }
    signal.close();
    await this.#release();
  }

  // A backoff sleep that stop() cuts short, so shutdown never waits out a long backoff.
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#interrupt = done;
    });
  }

  async #ensureLease(): Promise<boolean> {
    if (!this.deps.membership.owns(this.sub.name, this.partition)) {
      // Assigned to another live process: hand the lease over between batches.
      if (this.#leased) {
        await this.#release();
        this.deps.log.info({ subscription: this.sub.name, partition: this.partition }, "partition handed over to another process");
      }
      return false;
    }
    const now = Date.now();
    if (this.#leased && now - this.#lastRenew < (this.deps.leaseSeconds * 1000) / 3) return true;
    const got = rows(
      await this.deps.db.execute(sql`
        update outbox.subscriptions
           set lease_owner = ${this.deps.processId},
               lease_expires_at = now() + make_interval(secs => ${this.deps.leaseSeconds})
         where name = ${this.sub.name} and partition = ${this.partition}
           and (lease_owner is null or lease_owner = ${this.deps.processId} or lease_expires_at < now())
        returning 1`),
    );
    this.#leased = got.length > 0;
    if (this.#leased) this.#lastRenew = now;
    return this.#leased;
  }

  async #release(): Promise<void> {
    if (!this.#leased) return;
    await this.deps.db
      .execute(sql`
        update outbox.subscriptions set lease_owner = null, lease_expires_at = null
         where name = ${this.sub.name} and partition = ${this.partition} and lease_owner = ${this.deps.processId}`)
      .catch(() => {});
    this.#leased = false;
  }

  /** lock takes the checkpoint row for this transaction, or null if another process owns the lease. */
  async #lock(tx: Tx): Promise<Checkpoint | null> {
    const [cp] = await executePrepared<Checkpoint>(
      tx,
      sql`
        select last_transaction_id::text, last_position::text, status, lease_owner, failing_position::text, failing_attempts, start_snapshot
          from outbox.subscriptions where name = ${this.sub.name} and partition = ${this.partition} for update`,
      "outbox_checkpoint_lock",
    );
    if (!cp || cp.lease_owner !== this.deps.processId) {
      this.#leased = false;
      return null;
    }
    this.#noteStart(cp);
    return cp;
  }

  #start: StartSnapshot | undefined;

  /** noteStart keeps the start snapshot while the checkpoint is below its `xmax` (replay clears it). */
  #noteStart(cp: Checkpoint): void {
    const text = cp.start_snapshot;
    if (!text) this.#start = undefined;
    else if (this.#start?.text !== text) this.#start = new StartSnapshot(text);
    if (this.#start && BigInt(cp.last_transaction_id) >= this.#start.xmax) this.#start = undefined;
  }

  /** matching is the envelopes of the rows in `batch` this subscription handles. */
  #matching(batch: readonly EventRow[]): EventEnvelope[] {
    const out: EventEnvelope[] = [];
    for (const row of batch) {
      const env = toEnvelope(row);
      if (this.#wants(row, env)) out.push(env);
    }
    return out;
  }

  /** wants says whether this subscription handles `row`: it matches, and it came after the start. */
  #wants(row: EventRow, env: EventEnvelope): boolean {
    if (this.#start?.committedBefore(row.transaction_id)) return false;
    return this.sub.matcher.matches(env);
  }

  async #read(tx: Tx, cp: Checkpoint, limit: number): Promise<EventRow[]> {
    const types = this.sub.matcher.types;
    const n = this.partitions;
    // The partition test is wrapped in CASE on purpose: Postgres guesses an equality on an
    // expression matches 0.5% of rows, and with that guess it would rather seq-scan and sort the
    // whole log than walk (transaction_id, position) from the checkpoint and stop at the limit;
    // a CASE is guessed at 50%, which keeps the ordered index scan. Same rows, same order.
    return rows<EventRow>(
      await tx.execute(sql`
        select ${EVENT_COLUMNS} from outbox.events
         where (transaction_id, position) > (${cp.last_transaction_id}::xid8, ${cp.last_position}::bigint)
           and transaction_id < pg_snapshot_xmin(pg_current_snapshot())
           ${types ? sql`and type = any(${sql.param(types)}::text[])` : sql``}
           ${n > 1 ? sql`and (case when ((hashtext(subject)::bigint % ${n}) + ${n}) % ${n} = ${this.partition} then true else false end)` : sql``}
         order by events.transaction_id, events.position
         limit ${limit}`),
    );
  }

  get partitions(): number {
    return this.sub.partitions;
  }

  async #advance(tx: Tx, to: EventRow, processed: number, clearFailure: boolean): Promise<void> {
    await executePrepared(
      tx,
      sql`
      update outbox.subscriptions
         set last_transaction_id = ${to.transaction_id}::xid8, last_position = ${to.position}::bigint,
             processed_count = processed_count + ${processed},
             lease_expires_at = now() + make_interval(secs => ${this.deps.leaseSeconds}),
             updated_at = now()
             ${clearFailure ? sql`, failing_position = null, failing_attempts = 0, first_failed_at = null` : sql``}
       where name = ${this.sub.name} and partition = ${this.partition}`,
      "outbox_checkpoint_advance",
    );
    this.#lastRenew = Date.now();
  }

  // Sinks get the pool, not an open transaction: their writes (if any) autocommit, and no
  // connection is held while they wait on AWS.
  get #pool(): Tx {
    return this.deps.db as unknown as Tx;
  }

  #ctx(tx: Tx, attempt: number): HandlerContext {
    return { tx, sql: rawSql(tx), subscription: this.sub.name, partition: this.partition, attempt, signal: this.#abort.signal };
  }

  /**
   * runOne runs the handler for one event with the event as the causation of whatever it
   * appends. Inside a batch the caller passes one `store` already entered for the whole batch
   * (handlers run one after another), which saves entering a new async context per event.
   */
  async #runOne(tx: Tx, event: EventEnvelope, attempt: number, store?: EventContext): Promise<void> {
    const started = performance.now();
    if (store) {
      store.correlationId = event.correlationid;
      store.causationId = event.id;
      store.actorId = event.actorid;
      await this.#invoke(tx, event, attempt);
    } else {
      await runWithEventContext({ correlationId: event.correlationid, causationId: event.id, actorId: event.actorid }, () => this.#invoke(tx, event, attempt));
    }
    this.deps.metrics.handlerDuration(this.sub.name, (performance.now() - started) / 1000);
  }

  async #invoke(tx: Tx, event: EventEnvelope, attempt: number): Promise<void> {
    const { handler, handleBatch, batchHandler } = this.sub.def;
    // A handler's write-behind statements (its appends) are settled before the next event, so a
    // failed one is charged to the event whose handler sent it, with its own error rather than
    // the "transaction is aborted" that the handler's later statements got.
    const settle = () => settleWriteBehind(tx);
    const cause = async (err: unknown) => {
      throw await writeBehindCause(tx, err);
    };
    if (handler) return handler(event, this.#ctx(tx, attempt)).then(settle, cause);
    if (handleBatch) return handleBatch([event], this.#ctx(tx, attempt)).then(settle, cause);
    const res = await batchHandler!([event], this.#ctx(tx, attempt));
    const rejected = res?.rejected[0];
    if (rejected) throw new Error(rejected.error);
  }

  /**
   * processBatch reads one batch past the checkpoint and handles it. On a handler failure the
   * whole transaction rolls back; the events before the failing one are then re-run and
   * committed, the failure is counted, and the failing event is retried after a backoff or,
   * past `maxAttempts`, dead-lettered so later events flow.
   */
  async processBatch(): Promise<{ processed: number; retryInMs?: number }> {
    if (this.sub.def.batchHandler) return this.#processSinkBatch();
    let failedAt = -1;
    let failure: unknown;
    let batch: EventRow[] = [];
    let failingAttempts = 0;
    const seen = await this.#peek();
    if (!seen) return { processed: 0 };
    if (this.sub.def.handleBatch && !this.#eventByEvent(seen.cp)) {
      const whole = await this.#processWholeBatch(seen);
      if (whole) return whole;
    }
    try {
      const processed = await this.deps.db.transaction(async (tx) => {
        const locked = await this.#lockAndRead(tx, seen);
        if (!locked) return 0;
        const { cp } = locked;
        batch = locked.batch;
        let handled = 0;
        const store: EventContext = { correlationId: "" };
        await runWithEventContext(store, async () => {
          for (let i = 0; i < batch.length; i++) {
            const row = batch[i]!;
            const env = toEnvelope(row);
            if (!this.#wants(row, env)) continue;
            failingAttempts = cp.failing_position === row.position ? cp.failing_attempts : 0;
            try {
              await this.#runOne(tx, env, failingAttempts + 1, store);
            } catch (err) {
              failedAt = i;
              failure = err;
              throw err;
            }
            handled++;
          }
        });
        await this.#advance(tx, batch[batch.length - 1]!, handled, true);
        return handled;
      });
      if (processed) this.deps.metrics.processed(this.sub.name, this.partition, processed);
      return { processed: batch.length };
    } catch (err) {
      if (failedAt < 0) throw err;
      return this.#recover(batch, failedAt, failure, failingAttempts + 1);
    }
  }

  /**
   * processWholeBatch hands a `handleBatch` subscription its batch in the checkpoint's
   * transaction. When the handler throws, everything rolls back and this batch's range is
   * handled event by event instead (returns null), so retries, backoff and dead letters
   * concern the poison event alone; whole batches resume past that range.
   */
  async #processWholeBatch(seen: { cp: Checkpoint; batch: EventRow[] }): Promise<{ processed: number } | null> {
    let batch: EventRow[] = [];
    try {
      const handled = await this.deps.db.transaction(async (tx) => {
        const locked = await this.#lockAndRead(tx, seen);
        if (!locked) return 0;
        batch = locked.batch;
        const matched = this.#matching(batch);
        if (matched.length) {
          const started = performance.now();
          await this.sub.def.handleBatch!(matched, this.#ctx(tx, 1));
          this.deps.metrics.handlerDuration(this.sub.name, (performance.now() - started) / 1000 / matched.length);
        }
        await this.#advance(tx, batch[batch.length - 1]!, matched.length, true);
        return matched.length;
      });
      if (handled) this.deps.metrics.processed(this.sub.name, this.partition, handled);
      return { processed: batch.length };
    } catch (err) {
      if (batch.length === 0) throw err;
      const last = batch[batch.length - 1]!;
      this.#eventByEventThrough = { tx: BigInt(last.transaction_id), pos: BigInt(last.position) };
      this.deps.metrics.failed(this.sub.name, this.partition);
      this.deps.log.warn({ subscription: this.sub.name, partition: this.partition, error: errorText(err), through: last.position }, "batch handler failed; retrying event by event");
      return null;
    }
  }

  #eventByEventThrough: { tx: bigint; pos: bigint } | undefined;

  /** lockAndRead locks the checkpoint and returns the batch to handle, or null if there is none. */
  async #lockAndRead(tx: Tx, seen: { cp: Checkpoint; batch: EventRow[] }): Promise<{ cp: Checkpoint; batch: EventRow[] } | null> {
    const cp = await this.#lock(tx);
    if (!cp || cp.status === "paused") return null;
    // What the peek read is still the head of the batch if the checkpoint has not moved:
    // anything that became visible since has a larger transaction id.
    const unmoved = cp.last_transaction_id === seen.cp.last_transaction_id && cp.last_position === seen.cp.last_position;
    const batch = unmoved ? seen.batch : await this.#read(tx, cp, this.sub.batchSize);
    return batch.length ? { cp, batch } : null;
  }

  // True while the checkpoint is still inside the range of a batch that failed as a whole.
  #eventByEvent(cp: Checkpoint): boolean {
    const until = this.#eventByEventThrough;
    if (!until) return false;
    const tx = BigInt(cp.last_transaction_id);
    const inside = tx < until.tx || (tx === until.tx && BigInt(cp.last_position) < until.pos);
    if (!inside) this.#eventByEventThrough = undefined;
    return inside;
  }

  /**
   * peek reads the checkpoint and the next batch without locking anything. Most polls find
   * nothing, and a poll that locked the checkpoint row first would take a transaction id, hold
   * back every reader's horizon (`transaction_id < snapshot xmin`) until it ended, and flush a
   * commit record to disk, for nothing. Null when there is nothing to do.
   */
  async #peek(): Promise<{ cp: Checkpoint; batch: EventRow[] } | null> {
    const [cp] = await executePrepared<Checkpoint>(
      this.deps.db,
      sql`
        select last_transaction_id::text, last_position::text, status, lease_owner, failing_position::text, failing_attempts, start_snapshot
          from outbox.subscriptions where name = ${this.sub.name} and partition = ${this.partition}`,
      "outbox_checkpoint_peek",
    );
    if (!cp || cp.lease_owner !== this.deps.processId) {
      this.#leased = false;
      return null;
    }
    if (cp.status === "paused") return null;
    this.#noteStart(cp);
    const batch = await this.#read(this.#pool, cp, this.sub.batchSize);
    return batch.length ? { cp, batch } : null;
  }

  async #recover(batch: EventRow[], failedAt: number, failure: unknown, attempts: number): Promise<{ processed: number; retryInMs?: number }> {
    const failed = batch[failedAt]!;
    const error = errorText(failure);
    this.deps.metrics.failed(this.sub.name, this.partition);
    this.deps.log.warn({ subscription: this.sub.name, partition: this.partition, position: failed.position, attempts, error }, "handler failed");
    const give_up = attempts >= this.sub.maxAttempts;
    let processed = 0;
    await this.deps.db.transaction(async (tx) => {
      const cp = await this.#lock(tx);
      if (!cp) return;
      for (let i = 0; i < failedAt; i++) {
        const env = toEnvelope(batch[i]!);
        if (!this.#wants(batch[i]!, env)) continue;
        await this.#runOne(tx, env, 1);
        processed++;
      }
      if (give_up) {
        await this.#deadLetter(tx, failed, error, attempts);
        await this.#advance(tx, failed, processed, true);
        return;
      }
      if (failedAt > 0) await this.#advance(tx, batch[failedAt - 1]!, processed, false);
      await tx.execute(sql`
        update outbox.subscriptions
           set failing_position = ${failed.position}::bigint, failing_attempts = ${attempts},
               first_failed_at = case when failing_position = ${failed.position}::bigint then first_failed_at else now() end,
               last_error = ${error}, last_error_at = now()
         where name = ${this.sub.name} and partition = ${this.partition}`);
    });
    if (processed) this.deps.metrics.processed(this.sub.name, this.partition, processed);
    if (give_up) return { processed: processed + 1 };
    return { processed, retryInMs: backoffMs(attempts, this.sub.backoff.baseMs, this.sub.backoff.maxMs) };
  }

  async #deadLetter(tx: Tx, row: EventRow, error: string, attempts: number): Promise<void> {
    await tx.execute(sql`
      insert into outbox.dead_letters (id, subscription, partition, event_position, event_id, event_type, error, attempts, first_failed_at, last_failed_at)
      select ${randomUUIDv7()}::uuid, ${this.sub.name}, ${this.partition}, ${row.position}::bigint, ${row.id}::uuid, ${row.type}, ${error}, ${attempts},
             coalesce((select first_failed_at from outbox.subscriptions where name = ${this.sub.name} and partition = ${this.partition} and failing_position = ${row.position}::bigint), now()),
             now()
      on conflict (subscription, event_position) do update
         set error = excluded.error, attempts = outbox.dead_letters.attempts + excluded.attempts, status = 'dead', last_failed_at = now()`);
    await tx.execute(sql`
      update outbox.subscriptions set last_error = ${error}, last_error_at = now()
       where name = ${this.sub.name} and partition = ${this.partition}`);
    this.deps.metrics.deadLettered(this.sub.name);
  }

  /**
   * Sinks call AWS, which must not happen while holding a transaction open (it would hold back
   * every reader's snapshot horizon). They read, send outside a transaction, then commit the
   * checkpoint only if it has not moved: delivery to AWS is at least once, deduplicated
   * downstream by the event id.
   */
  async #processSinkBatch(): Promise<{ processed: number; retryInMs?: number }> {
    // The checkpoint is locked only when the batch is committed, below.
    const seen = await this.#peek();
    if (!seen) return { processed: 0 };
    const { cp, batch } = seen;
    const matched = this.#matching(batch);
    const attempts = (cp.failing_position === batch[0]!.position ? cp.failing_attempts : 0) + 1;
    let result: BatchResult | void;
    try {
      result = matched.length ? await this.sub.def.batchHandler!(matched, this.#ctx(this.#pool, attempts)) : undefined;
    } catch (err) {
      // Neither a shutdown nor an outage is the events' fault: no attempt is counted.
      if (this.#stopped) return { processed: 0 };
      if (err instanceof DeliveryDeferredError) return this.#deferred(err);
      if (attempts >= this.sub.maxAttempts && batch.length > 1) return this.#isolate(batch, err);
      return this.#recover(batch, 0, err, attempts).then((r) => ({ ...r, processed: 0 }));
    }
    const rejected = new Map((result?.rejected ?? []).map((r) => [r.event.id, r.error]));
    await this.deps.db.transaction(async (tx) => {
      const now = await this.#lock(tx);
      if (!now || now.last_position !== cp.last_position || now.last_transaction_id !== cp.last_transaction_id) return;
      for (const row of batch) {
        const error = rejected.get(row.id);
        if (error) await this.#deadLetter(tx, row, error, 1);
      }
      await this.#advance(tx, batch[batch.length - 1]!, matched.length - rejected.size, true);
    });
    this.deps.metrics.processed(this.sub.name, this.partition, matched.length - rejected.size);
    return { processed: batch.length };
  }

  /** deferred shows a sink's stall as the partition's last error and retries the batch later, counting no attempt. */
  async #deferred(err: DeliveryDeferredError): Promise<{ processed: number; retryInMs: number }> {
    await this.deps.db.execute(sql`
      update outbox.subscriptions set last_error = ${errorText(err)}, last_error_at = now()
       where name = ${this.sub.name} and partition = ${this.partition} and lease_owner = ${this.deps.processId}`);
    return { processed: 0, retryInMs: err.retryInMs };
  }

  // A batch that keeps failing is split so one poison event cannot hold back the rest.
  async #isolate(batch: EventRow[], err: unknown): Promise<{ processed: number; retryInMs?: number }> {
    this.deps.log.warn({ subscription: this.sub.name, err: errorText(err) }, "batch keeps failing; isolating events");
    for (const row of batch) {
      const env = toEnvelope(row);
      let error: string | undefined;
      if (this.#wants(row, env)) {
        try {
          const res = await this.sub.def.batchHandler!([env], this.#ctx(this.#pool, this.sub.maxAttempts));
          error = res?.rejected[0]?.error;
        } catch (e) {
          // An outage or a shutdown while isolating: the rest waits, nothing is dead-lettered for it.
          if (this.#stopped) return { processed: 0 };
          if (e instanceof DeliveryDeferredError) return this.#deferred(e);
          error = errorText(e);
        }
      }
      await this.deps.db.transaction(async (tx) => {
        if (!(await this.#lock(tx))) return;
        if (error) await this.#deadLetter(tx, row, error, this.sub.maxAttempts);
        await this.#advance(tx, row, error ? 0 : 1, true);
      });
    }
    return { processed: batch.length };
  }

  /** Dead letters an operator asked to redrive are delivered by the partition's own worker. */
  async #redriveRequested(): Promise<void> {
    // One round trip in the common case (nothing asked), instead of a transaction of four.
    const [asked] = await executePrepared<{ asked: boolean }>(
      this.deps.db,
      sql`
        select exists (select 1 from outbox.dead_letters
                        where subscription = ${this.sub.name} and partition = ${this.partition} and status = 'redriving') as asked`,
      "outbox_redrive_asked",
    );
    if (!asked?.asked) return;
    for (;;) {
      const done = await this.deps.db.transaction(async (tx) => {
        const [dl] = rows<{ id: string; event_position: string; attempts: number }>(
          await tx.execute(sql`
            select id, event_position::text, attempts from outbox.dead_letters
             where subscription = ${this.sub.name} and partition = ${this.partition} and status = 'redriving'
             order by event_position limit 1 for update skip locked`),
        );
        if (!dl) return false;
        const [row] = rows<EventRow>(await tx.execute(sql`select ${EVENT_COLUMNS} from outbox.events where position = ${dl.event_position}::bigint`));
        try {
          await tx.transaction(async (sp) => this.#runOne(sp as unknown as Tx, toEnvelope(row!), dl.attempts + 1));
          await tx.execute(sql`update outbox.dead_letters set status = 'redriven', redriven_at = now() where id = ${dl.id}::uuid`);
          this.deps.metrics.processed(this.sub.name, this.partition, 1);
        } catch (err) {
          await tx.execute(sql`
            update outbox.dead_letters set status = 'dead', attempts = attempts + 1, error = ${errorText(err)}, last_failed_at = now()
             where id = ${dl.id}::uuid`);
        }
        return true;
      });
      if (!done) return;
    }
  }
}
