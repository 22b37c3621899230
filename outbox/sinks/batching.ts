import type { EventEnvelope } from "../envelope.ts";

/** CallLimits bounds one AWS batch call by entry count and summed entry size in bytes. */
export interface CallLimits {
  maxEntries: number;
  maxBytes: number;
}

/** SinkLog is the slice of the pino logger the sinks use; `info` and `error` fall back to `warn`. */
export interface SinkLog {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

/** utf8Length returns the UTF-8 encoded size of a string, which is what AWS limits count. */
export const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

// At least one item is always taken so an oversized item cannot loop forever; callers reject
// items larger than `maxBytes` before they get here.
/** takeCall returns the longest prefix of `items` that fits one call, packing greedily in order. */
export function takeCall<T>(items: readonly T[], sizeOf: (item: T) => number, limits: CallLimits): T[] {
  const call: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (call.length > 0 && (call.length >= limits.maxEntries || bytes + size > limits.maxBytes)) break;
    call.push(item);
    bytes += size;
  }
  return call;
}

/**
 * PendingEntry is one event on its way to AWS: the request entry, its counted size, the key whose
 * order it keeps (Kinesis partition key, EventBridge subject) and its failures so far.
 */
export interface PendingEntry<E> {
  event: EventEnvelope;
  entry: E;
  size: number;
  key: string;
  failures: number;
  lastError?: string;
  /** When this entry first failed in the current stall (epoch ms). */
  failingSince?: number;
  /** Set when a call holding it was refused as a whole as invalid: it is then sent alone. */
  suspect?: boolean;
  /** Single-entry calls of it refused as invalid. */
  invalidTries?: number;
}

/** EntryResult is the per-entry part of a batch response: no code means the entry was stored. */
export interface EntryResult {
  errorCode?: string;
  errorMessage?: string;
}

/** EntryDisposition says what to do with an entry AWS refused: resend it, or dead-letter it (it can never be accepted). */
export type EntryDisposition = "retry" | "reject";

// Why one entry per key per call: the services store each entry of a call independently, so
// when entry n of key K fails, entry n+1 of K in the same call may still be stored and end up
// ahead of it (AWS: "PutRecords doesn't guarantee the ordering of records"; PutEvents answers
// entry by entry too). Nothing can undo a stored entry, so the only way to keep per-key order
// through partial failures is to never have two entries of one key in flight at once: the next
// entry of K goes out only once K's previous one is stored (or dead-lettered). Kinesis'
// SequenceNumberForOrdering does not help: it exists on PutRecord only, one record per call,
// which is the same serialisation with up to 500 times the calls. The cost is one call per entry
// of the busiest key in the batch; distinct keys still share calls.
/** firstPerKey keeps only the earliest pending entry of each key. */
export function firstPerKey<E>(pending: readonly PendingEntry<E>[]): PendingEntry<E>[] {
  const seen = new Set<string>();
  return pending.filter((p) => {
    if (seen.has(p.key)) return false;
    seen.add(p.key);
    return true;
  });
}
