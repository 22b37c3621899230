import type postgres from "postgres";
import type { EventEnvelope } from "./envelope.ts";

const CHANNEL = "outbox_events";

/** WakeSignal is one worker loop's doorbell. */
export interface WakeSignal {
  /** consume says whether a wake arrived since the last call, and clears it. */
  consume(): boolean;
  /**
   * consumeAwaited says what the wakes since the last call were for, and clears it: the newest
   * transaction id among the appends that rang (`xid`), and whether any wake came without one
   * (`blind`: a nudge, another process's NOTIFY, stop), after which only looking can tell.
   */
  consumeAwaited(): { xid: bigint | undefined; blind: boolean };
  /** consumeNudge says whether an operator nudge or another process's NOTIFY arrived, and clears it. */
  consumeNudge(): boolean;
  /** wait resolves at the next wake or after `ms`; at once if a wake is pending. */
  wait(ms: number): Promise<void>;
  /**
   * waitForCommit is `wait`, also woken when this process commits transaction `xid` (or, with no
   * `xid`, any transaction that appended events): for a loop whose events are committed but not
   * readable yet, because an older transaction still holds the read horizon back. `xid` is that
   * horizon as the loop's last read saw it (the oldest transaction still running): its end is
   * what may free them, and waking for anything else would only find nothing again. At once if
   * `xid` ended moments ago. Transactions this process cannot see end (another process's, or one
   * that neither appended nor advanced a checkpoint) are waited out by `ms`.
   */
  waitForCommit(ms: number, xid?: string): Promise<void>;
  /** fire wakes the loop (stop uses it); `xid` is the transaction whose append rang, when known. */
  fire(xid?: string): void;
  close(): void;
}

class Signal implements WakeSignal {
  #pending = false;
  /** Set while the loop waits for a commit (see waitForCommit). */
  anyCommit = false;
  /** The transaction whose end the loop waits for (see waitForCommit); undefined: any commit. */
  #blockedBy: string | undefined;
  #nudged = false;
  #awaitedXid: bigint | undefined;
  #blind = false;
  #resolve: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly interested: (e: EventEnvelope) => boolean,
    private readonly onClose: (s: Signal) => void,
    private readonly endedRecently: (xid: string) => boolean,
  ) {}

  consume(): boolean {
    const was = this.#pending;
    this.#pending = false;
    return was;
  }

  consumeAwaited(): { xid: bigint | undefined; blind: boolean } {
    const out = { xid: this.#awaitedXid, blind: this.#blind };
    this.#awaitedXid = undefined;
    this.#blind = false;
    return out;
  }

  consumeNudge(): boolean {
    const was = this.#nudged;
    this.#nudged = false;
    return was;
  }

  nudge(): void {
    this.#nudged = true;
    this.fire();
  }

  fire(xid?: string): void {
    if (xid === undefined) this.#blind = true;
    else {
      const x = BigInt(xid);
      if (this.#awaitedXid === undefined || x > this.#awaitedXid) this.#awaitedXid = x;
    }
    this.#pending = true;
    this.#release();
  }

  /**
   * committed ends a waitForCommit when `xid` is the transaction it waits for (or it waits for
   * any, or the commit's transaction is not known): not a wake (`consume` stays false), just a
   * reason to look again.
   */
  committed(xid: string | undefined): void {
    if (this.anyCommit && (this.#blockedBy === undefined || xid === undefined || xid === this.#blockedBy)) this.#release();
  }

  #release(): void {
    this.anyCommit = false;
    const resolve = this.#resolve;
    if (resolve) {
      this.#resolve = undefined;
      clearTimeout(this.#timer);
      resolve();
    }
  }

  waitForCommit(ms: number, xid?: string): Promise<void> {
    if (xid !== undefined && this.endedRecently(xid)) return Promise.resolve();
    this.#blockedBy = xid;
    return this.#wait(ms, true);
  }

  wait(ms: number): Promise<void> {
    this.#blockedBy = undefined;
    return this.#wait(ms, false);
  }

  #wait(ms: number, anyCommit: boolean): Promise<void> {
    this.anyCommit = anyCommit;
    if (this.#pending) return Promise.resolve();
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => {
        this.#resolve = undefined;
        resolve();
      }, ms);
    });
  }

  close(): void {
    this.fire();
    this.onClose(this);
  }
}

/**
 * Wakeup wakes worker loops when events are appended. In this process it rings, right after
 * commit, only the loops whose subscription and partition the new events concern. Other
 * processes learn through a NOTIFY sent after commit from a separate connection and coalesced,
 * never inside the writing transaction (a notifying commit takes a global lock that would
 * serialise every writer); they cannot tell which loops it concerns, so it rings all of theirs.
 */
export class Wakeup {
  readonly #signals = new Set<Signal>();
  /** The transactions this process saw end lately, oldest first (a bounded window), for waitForCommit. */
  readonly #ended = new Set<string>();
  readonly #processId: string;
  readonly #sql: postgres.Sql;
  readonly #coalesceMs: number;
  #notifyTimer: ReturnType<typeof setTimeout> | undefined;
  #lastNotify = 0;
  #listener: { unlisten(): Promise<void> } | undefined;

  constructor(sql: postgres.Sql, processId: string, coalesceMs = 50) {
    this.#sql = sql;
    this.#processId = processId;
    this.#coalesceMs = coalesceMs;
  }

  /** register gives a loop its signal; `interested` says which appended events concern it. */
  register(interested: (e: EventEnvelope) => boolean): WakeSignal {
    const s = new Signal(
      interested,
      (x) => this.#signals.delete(x),
      (xid) => this.#ended.has(xid),
    );
    this.#signals.add(s);
    return s;
  }

  async listen(): Promise<void> {
    this.#listener = await this.#sql.listen(CHANNEL, (payload) => {
      if (payload !== this.#processId) this.wakeLocal();
    });
  }

  /** appended is called after a commit that appended `events`, in transaction `xid` when known. */
  appended(events: readonly EventEnvelope[], xid?: string): void {
    if (xid !== undefined) this.#remember(xid);
    for (const s of this.#signals) {
      let interested = false;
      for (const e of events) {
        if (s.interested(e)) {
          interested = true;
          break;
        }
      }
      if (interested) s.fire(xid);
      else s.committed(xid);
    }
    if (this.#notifyTimer) return;
    const wait = Math.max(0, this.#lastNotify + this.#coalesceMs - Date.now());
    this.#notifyTimer = setTimeout(() => {
      this.#notifyTimer = undefined;
      this.#lastNotify = Date.now();
      this.#sql.notify(CHANNEL, this.#processId).catch(() => {
        // Polling still delivers; a lost notification only costs latency.
      });
    }, wait);
  }

  /**
   * ended is called after this process committed transaction `xid` without appending (a
   * delivery that only advanced a checkpoint): it may have been what held the read horizon back.
   */
  ended(xid: string): void {
    this.#remember(xid);
    for (const s of this.#signals) s.committed(xid);
  }

  #remember(xid: string): void {
    this.#ended.add(xid);
    if (this.#ended.size > 1024) this.#ended.delete(this.#ended.values().next().value!);
  }

  /** wakeLocal rings every loop of this process as a nudge (operator action, foreign NOTIFY). */
  wakeLocal(): void {
    for (const s of this.#signals) s.nudge();
  }

  async close(): Promise<void> {
    clearTimeout(this.#notifyTimer);
    this.wakeLocal();
    await this.#listener?.unlisten().catch(() => {});
  }
}
