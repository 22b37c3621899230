import { partitionOf } from "../hashtext.ts";
import { declaredRunning } from "../horizon.ts";
import type { WakeSignal } from "../wakeup.ts";
import { isCheckpointFenceError, PartitionCheckpoint } from "./checkpoint.ts";
import { Failures } from "./failures.ts";
import { EventFilter } from "./filter.ts";
import { PartitionLease } from "./lease.ts";
import { PerEventDelivery } from "./per-event.ts";
import { ProjectionDelivery } from "./projection.ts";
import { Redrive } from "./redrive.ts";
import { RelayDelivery } from "./relay.ts";
import type { BatchOutcome, CompiledSubscription, Partition, WorkerDeps } from "./subscription.ts";

/** How long a loop waits for the transaction holding the horizon back to end before looking again anyway. */
const AWAIT_HORIZON_MS = 10;

/**
 * PartitionWorker runs one subscription partition in this process: a loop that holds the
 * partition's lease (`./lease.ts`), delivers batches past the checkpoint the way the
 * subscription's kind of body needs (`./per-event.ts`, `./projection.ts`, `./relay.ts`),
 * serves redrive requests (`./redrive.ts`), and sleeps until an append wakes it, a backoff
 * ends, or the poll interval passes.
 */
export class PartitionWorker implements Partition {
  #stopped = false;
  #running: Promise<void> | undefined;
  #signal: WakeSignal | undefined;
  #lastRedriveAt = 0;
  #interrupt: (() => void) | undefined;
  #awaitingLease = false;
  readonly #abort = new AbortController();
  readonly #lease: PartitionLease;
  readonly #deliver: () => Promise<BatchOutcome>;
  readonly #redrive: Redrive;
  readonly #checkpoint: PartitionCheckpoint;

  constructor(
    readonly sub: CompiledSubscription,
    readonly partition: number,
    readonly deps: WorkerDeps,
  ) {
    const filter = new EventFilter(sub.matcher);
    this.#lease = new PartitionLease(this);
    const checkpoint = new PartitionCheckpoint(this, this.#lease, filter);
    this.#checkpoint = checkpoint;
    const failures = new Failures(this, checkpoint);
    const perEvent = new PerEventDelivery(this, checkpoint, filter, failures);
    this.#redrive = new Redrive(this, checkpoint, perEvent);
    const body = sub.body;
    if (body.kind === "relay") {
      const relay = new RelayDelivery(this, body.handle, checkpoint, filter, failures);
      this.#deliver = () => relay.deliver();
    } else {
      const projection = body.kind === "projection" ? new ProjectionDelivery(this, body.handle, checkpoint, filter, perEvent) : undefined;
      this.#deliver = async () => {
        const seen = await checkpoint.peek();
        if (!seen) return { processed: 0 };
        const outcome = await (projection ? projection.deliver(seen) : perEvent.deliver(seen));
        return outcome.retryInMs === undefined && seen.batch.length < sub.batchSize ? { ...outcome, exhausted: true } : outcome;
      };
    }
  }

  get stopping(): AbortSignal {
    return this.#abort.signal;
  }

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

  /** processBatch delivers one batch past the checkpoint, if this process holds the lease and there is one. */
  processBatch(): Promise<BatchOutcome> {
    return this.#deliver();
  }

  async #loop(): Promise<void> {
    const { wakeup, pollMs, log } = this.deps;
    const types = this.sub.matcher.types;
    // Rung only by appends of a type this subscription reads, in this partition.
    this.#signal = wakeup.register((e) => (types === null || types.includes(e.type)) && partitionOf(e.subject, this.sub.partitions) === this.partition);
    const signal = this.#signal;
    const { membership } = this.deps;
    // A heartbeat that finds a member gone may hand this partition here: look at once rather
    // than at the next poll, which is what makes a takeover after a crash quick.
    const unwatch = membership.onChange(() => {
      if (this.#awaitingLease && membership.owns(this.sub.name, this.partition)) this.#interrupt?.();
    });
    // Blind wakes (no transaction id: a nudge, another process's NOTIFY) make the loop look
    // every 5 ms for a short while, since an append may still sit behind an older open
    // transaction (the read horizon) and only looking can tell when it is readable.
    let burstUntil = 0;
    // The newest transaction whose append rang and that no look has yet found readable: the
    // loop waits for the horizon to pass it, waking when the transaction holding it back ends,
    // rather than at every commit or on a timer.
    let awaited: bigint | undefined;
    let narrowed = false;
    while (!this.#stopped) {
      const woken = signal.consume();
      if (woken) {
        const rang = signal.consumeAwaited();
        if (rang.blind) {
          burstUntil = Date.now() + 250;
          // Another process's append (its transaction unknown here): the next look reads below
          // the narrowed horizon, in case it sits behind a transaction that appends nothing.
          this.#checkpoint.narrowNext = true;
        }
        if (rang.xid !== undefined && (awaited === undefined || rang.xid > awaited)) awaited = rang.xid;
      }
      let progressed = false;
      let exhausted = false;
      let delay = pollMs;
      try {
        // Our own heartbeat overdue (a pause, a stall): others may be taking our partitions
        // over, so start nothing until it is renewed.
        if (!membership.alive() || !(await this.#lease.ensure())) {
          // The partition is another process's, or still leased by one that is handing it over:
          // look again at the next poll (an in-memory check, or one update when assigned here).
          this.#awaitingLease = true;
          await this.#sleep(Math.min(pollMs, (this.deps.leaseSeconds * 1000) / 2, membership.alive() ? Infinity : membership.heartbeatMs));
          this.#awaitingLease = false;
          continue;
        }
        // Redrive requests are rare: look for them when nudged (not on every append) or once
        // per poll interval.
        if (signal.consumeNudge() || Date.now() - this.#lastRedriveAt > pollMs) {
          this.#lastRedriveAt = Date.now();
          await this.#redrive.run();
        }
        this.#checkpoint.horizon = undefined;
        // Whether this look is below the narrowed horizon: one that is still behind waits for
        // that horizon's transaction (an appender) rather than narrowing again at once.
        narrowed = this.#checkpoint.narrowNext;
        const outcome = await this.processBatch();
        progressed = outcome.processed > 0;
        exhausted = outcome.exhausted === true;
        if (outcome.retryInMs !== undefined) delay = outcome.retryInMs;
      } catch (err) {
        if (isCheckpointFenceError(err)) {
          // The batch's checkpoint moved or its lease went elsewhere while it ran: it rolled back
          // whole. Look again at once (the lease check and the peek decide what comes next).
          log.info({ subscription: this.sub.name, partition: this.partition }, "batch not committed: the checkpoint moved or the lease was lost");
          this.#lease.lost();
          continue;
        }
        log.error({ err, subscription: this.sub.name, partition: this.partition }, "subscription worker error");
        delay = Math.min(pollMs, 1000);
      }
      if (this.#stopped) break;
      // After a full batch, look again at once: more may be readable. After one that took all
      // the look found, a subscription that lingers waits that long and looks again, so that
      // under a steady stream each delivery carries more events; any other waits as after an
      // empty look: what was appended since has rung the signal (a pending wake ends the wait at
      // once), and the look's horizon says whether an append that rang before it is readable yet.
      if (progressed) {
        if (!exhausted) continue;
        if (this.sub.lingerMs > 0) {
          await this.#sleep(this.sub.lingerMs);
          continue;
        }
      }
      if (delay !== pollMs) {
        // A backoff: appends must not cut it short.
        await this.#sleep(delay);
        continue;
      }
      // Nothing found, or all of it taken. The horizon this look saw (the oldest transaction still running) tells
      // whether the awaited append is readable yet: every transaction below it has ended.
      const horizon = this.#checkpoint.horizon;
      if (awaited !== undefined && horizon === undefined) {
        // The look failed before it saw the horizon: only looking again can tell.
        awaited = undefined;
        burstUntil = Date.now() + 250;
      }
      if (awaited !== undefined && BigInt(horizon!) > awaited) awaited = undefined;
      if (awaited !== undefined && !narrowed && declaredRunning()) {
        // Hidden behind the plain horizon while a transaction that declared it appends nothing
        // runs here: look once more below the narrowed horizon, which skips such transactions
        // (`../horizon.ts`); its horizon, if still behind, is an appender's, the one worth waiting for.
        this.#checkpoint.narrowNext = true;
        continue;
      }
      if (awaited !== undefined) {
        // Still behind an older transaction: look again when it ends (this process's own, as
        // nearly all are), or after a few ms (another process's or another database's, which
        // this one is not told of: the horizon is the whole server's).
        await signal.waitForCommit(AWAIT_HORIZON_MS, horizon);
      } else if (Date.now() < burstUntil) await signal.waitForCommit(5);
      else await signal.wait(pollMs);
    }
    unwatch();
    signal.close();
    await this.#lease.release();
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
}
