import type postgres from "postgres";
import type { EventEnvelope } from "./envelope.ts";

const CHANNEL = "outbox_events";

/** WakeSignal is one worker loop's doorbell. */
export interface WakeSignal {
  /** consume says whether a wake arrived since the last call, and clears it. */
  consume(): boolean;
  /** consumeNudge says whether an operator nudge or another process's NOTIFY arrived, and clears it. */
  consumeNudge(): boolean;
  /** wait resolves at the next wake or after `ms`; at once if a wake is pending. */
  wait(ms: number): Promise<void>;
  /**
   * waitForAnyCommit is `wait`, also woken by this process's next commit of any events: for a
   * loop whose events are committed but not readable yet, because an older transaction still
   * holds the read horizon back (its commit, whatever it appended, may be what frees them).
   */
  waitForAnyCommit(ms: number): Promise<void>;
  /** fire wakes the loop (stop uses it). */
  fire(): void;
  close(): void;
}

class Signal implements WakeSignal {
  #pending = false;
  /** Set while the loop waits for the next commit of any events (see waitForAnyCommit). */
  anyCommit = false;
  #nudged = false;
  #resolve: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly interested: (e: EventEnvelope) => boolean,
    private readonly onClose: (s: Signal) => void,
  ) {}

  consume(): boolean {
    const was = this.#pending;
    this.#pending = false;
    return was;
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

  fire(): void {
    this.#pending = true;
    this.#release();
  }

  /** committed ends a waitForAnyCommit: not a wake (`consume` stays false), just a reason to look again. */
  committed(): void {
    if (this.anyCommit) this.#release();
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

  waitForAnyCommit(ms: number): Promise<void> {
    return this.#wait(ms, true);
  }

  wait(ms: number): Promise<void> {
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
    const s = new Signal(interested, (x) => this.#signals.delete(x));
    this.#signals.add(s);
    return s;
  }

  async listen(): Promise<void> {
    this.#listener = await this.#sql.listen(CHANNEL, (payload) => {
      if (payload !== this.#processId) this.wakeLocal();
    });
  }

  /** appended is called after a commit that appended `events`. */
  appended(events: readonly EventEnvelope[]): void {
    for (const s of this.#signals) {
      let interested = false;
      for (const e of events) {
        if (s.interested(e)) {
          interested = true;
          break;
        }
      }
      if (interested) s.fire();
      else s.committed();
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
