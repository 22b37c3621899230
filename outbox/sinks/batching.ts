import type { EventEnvelope } from "../envelope.ts";
import type { BatchResult, OutboxMetrics } from "../types.ts";
import { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, DEFAULT_MAX_RETRIES, errorText, fullJitterDelay, isRetryableCallError, sleep } from "./retry.ts";

/** CallLimits bounds one AWS batch call by entry count and summed entry size in bytes. */
export interface CallLimits {
  maxEntries: number;
  maxBytes: number;
}

/** SinkLog is the slice of the pino logger the sinks use. */
export interface SinkLog {
  warn(obj: object, msg: string): void;
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

/** PendingEntry is one event on its way to AWS: the request entry, its counted size and its failures so far. */
export interface PendingEntry<E> {
  event: EventEnvelope;
  entry: E;
  size: number;
  failures: number;
  lastError?: string;
}

/** EntryResult is the per-entry part of a batch response: no code means the entry was stored. */
export interface EntryResult {
  errorCode?: string;
  errorMessage?: string;
}

/** EntryDisposition says what to do with an entry AWS refused: resend it, dead-letter it, or fail the batch. */
export type EntryDisposition = "retry" | "reject" | "fatal";

/** DeliveryOptions configures sendInCalls for one AWS batch operation. */
export interface DeliveryOptions<E> {
  sink: string;
  operation: string;
  limits: CallLimits;
  send: (entries: E[]) => Promise<EntryResult[]>;
  classify: (errorCode: string) => EntryDisposition;
  /** Narrows the pending entries (kept in batch order) to those allowed into the next call. */
  eligible?: (pending: readonly PendingEntry<E>[]) => PendingEntry<E>[];
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  metrics?: OutboxMetrics;
  log?: SinkLog;
}

// Throwing hands the whole batch back to the worker, which retries it later: entries already
// stored are sent again, so delivery is at least once and consumers dedupe by event id.
/**
 * sendInCalls delivers `pending` in size-limited calls, resending only failed entries after a full-jitter
 * backoff, returns the entries refused permanently, and throws once an entry fails more than `maxRetries` times.
 */
export async function sendInCalls<E>(pending: PendingEntry<E>[], opts: DeliveryOptions<E>): Promise<BatchResult["rejected"]> {
  const maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
  const rejected: BatchResult["rejected"] = [];
  let rest = pending;

  const backOff = async (failed: PendingEntry<E>[], cause: string): Promise<void> => {
    opts.metrics?.sinkFailed(opts.sink, failed.length);
    const retry = Math.max(...failed.map((p) => p.failures));
    if (retry > maxRetries) {
      throw new Error(`${opts.operation} still failing for ${failed.length} of ${pending.length} events after ${maxRetries} retries (${cause})`);
    }
    const delayMs = fullJitterDelay(retry, opts.baseDelayMs ?? DEFAULT_BASE_DELAY_MS, opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
    opts.log?.warn({ sink: opts.sink, operation: opts.operation, failed: failed.length, retry, delayMs, cause }, `${opts.operation} partly failed; resending the failed entries`);
    await sleep(delayMs);
  };

  while (rest.length > 0) {
    const call = takeCall(opts.eligible ? opts.eligible(rest) : rest, (p) => p.size, opts.limits);
    let results: EntryResult[];
    try {
      results = await opts.send(call.map((p) => p.entry));
    } catch (err) {
      if (!isRetryableCallError(err)) throw new Error(`${opts.operation} failed: ${errorText(err)}`, { cause: err });
      for (const p of call) {
        p.failures++;
        p.lastError = errorText(err);
      }
      await backOff(call, errorText(err));
      continue;
    }

    const settled = new Set<PendingEntry<E>>();
    const failed: PendingEntry<E>[] = [];
    let fatal: string | undefined;
    let stored = 0;
    call.forEach((p, i) => {
      const r = results[i];
      // AWS answers entry for entry; a short answer is treated like a transient failure of the rest.
      const code = r ? r.errorCode : "MissingResult";
      if (!code) {
        settled.add(p);
        stored++;
        return;
      }
      const error = `${code}: ${r?.errorMessage ?? "no result for this entry"}`;
      switch (opts.classify(code)) {
        case "reject":
          rejected.push({ event: p.event, error: `${opts.operation} refused the event: ${error}` });
          settled.add(p);
          return;
        case "fatal":
          fatal ??= error;
          return;
        case "retry":
          p.failures++;
          p.lastError = error;
          failed.push(p);
      }
    });
    if (stored > 0) opts.metrics?.sinkSent(opts.sink, stored);
    rest = rest.filter((p) => !settled.has(p));
    if (fatal) throw new Error(`${opts.operation} cannot deliver: ${fatal}`);
    if (failed.length > 0) await backOff(failed, failed[0]!.lastError ?? "unknown");
  }
  if (rejected.length > 0) opts.metrics?.sinkFailed(opts.sink, rejected.length);
  return rejected;
}
