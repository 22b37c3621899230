import type postgres from "postgres";

const CHANNEL = "outbox_events";

/**
 * Wakeup wakes worker loops when events are appended: this process's loops directly after
 * commit, other processes through a NOTIFY that is sent after commit from a separate
 * connection and coalesced, never inside the writing transaction (a notifying commit takes a
 * global lock that would serialise every writer).
 */
export class Wakeup {
  readonly #waiters = new Set<() => void>();
  readonly #processId: string;
  readonly #sql: postgres.Sql;
  readonly #coalesceMs: number;
  #notifyTimer: ReturnType<typeof setTimeout> | undefined;
  #lastNotify = 0;
  #listener: { unlisten(): Promise<void> } | undefined;
  #generation = 0;
  #nudges = 0;

  constructor(sql: postgres.Sql, processId: string, coalesceMs = 50) {
    this.#sql = sql;
    this.#processId = processId;
    this.#coalesceMs = coalesceMs;
  }

  /** generation increases at every wake; a loop compares it to know it missed none. */
  get generation(): number {
    return this.#generation;
  }

  async listen(): Promise<void> {
    this.#listener = await this.#sql.listen(CHANNEL, (payload) => {
      if (payload !== this.#processId) this.wakeLocal();
    });
  }

  /**
   * nudges counts the wakes that did not come from this process's own appends: `wakeLocal`
   * (an operator action such as a redrive request, a test) and other processes' NOTIFYs.
   * Workers look for work other than new events (redrive requests) on those, not on every append.
   */
  get nudges(): number {
    return this.#nudges;
  }

  /** appended is called after a commit that appended events. */
  appended(): void {
    this.#wake();
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

  wakeLocal(): void {
    this.#nudges++;
    this.#wake();
  }

  #wake(): void {
    this.#generation++;
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  /** wait resolves at the next wake, after `ms`, or at once if a wake came since `seen`. */
  wait(ms: number, seen: number): Promise<void> {
    if (this.#generation !== seen) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.#notifyTimer);
    this.wakeLocal();
    await this.#listener?.unlisten().catch(() => {});
  }
}
