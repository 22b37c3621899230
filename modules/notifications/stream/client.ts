import type { StreamSink } from "./sink.ts";

/** MAX_PENDING_WRITES is how many unsent writes a stream may have before it is closed as too slow. */
export const MAX_PENDING_WRITES = 1_000;

/**
 * Client is one open stream: its user, the last seq it was sent, and the chain of its writes
 * (one at a time, in order).
 */
export class Client {
  pending = 0;
  closed = false;
  /** More rows wait past the last page read: read them once this page is written (paced by the client). */
  more = false;
  onDrained: () => void = () => {};
  readonly opened = Date.now();
  #chain: Promise<void> = Promise.resolve();
  constructor(
    readonly userId: string,
    public lastSeq: number,
    readonly sink: StreamSink,
    readonly onClosed: () => void,
  ) {}

  /** enqueue runs `write` after the writes before it; the stream closes when one fails or too many wait. */
  enqueue(write: () => Promise<void>): void {
    if (this.closed) return;
    if (++this.pending > MAX_PENDING_WRITES) {
      this.close();
      return;
    }
    this.#chain = this.#chain.then(async () => {
      this.pending--;
      if (this.closed) return;
      try {
        await write();
      } catch {
        this.close();
        return;
      }
      if (this.pending === 0 && this.more) {
        this.more = false;
        this.onDrained();
      }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sink.close();
    } finally {
      this.onClosed();
    }
  }
}
