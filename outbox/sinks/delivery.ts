// How a sink gets a batch into AWS without ever losing or reordering an event because AWS (or
// the network) is having a bad moment. A transient failure (throttling, 5xx, a dropped or
// refused connection, a timeout, and any error nobody classified) is resent with capped
// full-jitter backoff for as long as it lasts; the later entries of the same key wait behind it.
// Only an entry the service refuses as invalid is handed back for the dead letters, and the
// entries of its key after it then go on in order.
//
// A sink does not wait inside one handler call forever: after `sliceMs` it throws
// DeliveryDeferredError, so the worker renews its lease, notices a hand-over or a shutdown, and
// records the stall; it calls again with the same batch, and what AWS already stored or refused
// is remembered here (DeliveryState) instead of being sent twice.

import { DeliveryDeferredError } from "../errors.ts";
import type { BatchResult, OutboxMetrics } from "../types.ts";
import { type CallLimits, type EntryDisposition, type EntryResult, firstPerKey, type PendingEntry, type SinkLog, takeCall } from "./batching.ts";
import { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, errorText, type FailureKind, failureKind, fullJitterDelay, sleep } from "./retry.ts";

/** DEFAULT_SLICE_MS is how long one handler call keeps resending before handing the batch back to the worker. */
export const DEFAULT_SLICE_MS = 2_000;

// A stall is logged when it starts, when it ends, and at most this often in between.
const STALL_LOG_EVERY_MS = 30_000;

/** Retrying is what is remembered of a failing entry between handler calls. */
type Retrying = Pick<PendingEntry<unknown>, "failures" | "failingSince" | "lastError" | "suspect" | "invalidTries">;

/**
 * DeliveryState is one partition's unfinished batch, carried from one handler call to the next
 * while delivery stalls: which events AWS stored (null) or refused (the error), and each failing
 * event's failure count and start, so backoff and the stall's age go on where they were.
 */
export class DeliveryState {
  #head: string | undefined;
  readonly settled = new Map<string, string | null>();
  readonly failing = new Map<string, Retrying>();
  stalledSince: number | null = null;
  lastLoggedAt = 0;
  /** Set once a call succeeded: the requests are well-formed, so a lone entry refused as invalid is the entry's fault. */
  proven = false;

  /** resume starts or continues the batch that begins with event `head`; a new head forgets the old batch. */
  resume(head: string): void {
    if (head === this.#head) return;
    this.#head = head;
    this.settled.clear();
    this.failing.clear();
  }

  /** finish forgets the batch once it is delivered (the worker commits it next). */
  finish(): void {
    this.#head = undefined;
    this.settled.clear();
    this.failing.clear();
  }
}

/** stateOf returns a partition's delivery carry-over, creating it on first use. */
export function stateOf(states: Map<number, DeliveryState>, partition: number): DeliveryState {
  let state = states.get(partition);
  if (!state) states.set(partition, (state = new DeliveryState()));
  return state;
}

/** DeliveryOptions configures sendInCalls for one AWS batch operation. */
export interface DeliveryOptions<E> {
  sink: string;
  operation: string;
  limits: CallLimits;
  send: (entries: E[], signal?: AbortSignal) => Promise<EntryResult[]>;
  classify: (errorCode: string) => EntryDisposition;
  /** Narrows the pending entries (kept in batch order) to those allowed into the next call (default: first per key). */
  eligible?: (pending: readonly PendingEntry<E>[]) => PendingEntry<E>[];
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How long one call keeps resending before throwing DeliveryDeferredError (default 2000 ms). */
  sliceMs?: number;
  /** Aborts a backoff or an AWS call in flight (worker shutdown); the abort reason is thrown. */
  signal?: AbortSignal;
  /** The partition's carry-over between calls; without it a deferred batch starts afresh. */
  state?: DeliveryState;
  metrics?: OutboxMetrics;
  log?: SinkLog;
}

/**
 * sendInCalls delivers `pending` in size-limited calls, at most one entry per key in flight,
 * resending failed entries after a full-jitter backoff for as long as they fail. It returns the
 * entries the service refused as invalid, and throws DeliveryDeferredError when its slice is over
 * before everything is stored. Delivery is at least once: consumers dedupe by event id.
 */
export async function sendInCalls<E>(pending: PendingEntry<E>[], opts: DeliveryOptions<E>): Promise<BatchResult["rejected"]> {
  const state = opts.state ?? new DeliveryState();
  const eligible = opts.eligible ?? firstPerKey;
  const baseMs = opts.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const maxMs = opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const deadline = Date.now() + (opts.sliceMs ?? DEFAULT_SLICE_MS);
  const rejected: BatchResult["rejected"] = [];
  if (pending.length === 0) return rejected;

  state.resume(pending[0]!.event.id);
  let rest: PendingEntry<E>[] = [];
  for (const p of pending) {
    const settled = state.settled.get(p.event.id);
    if (settled === null) continue;
    if (settled !== undefined) rejected.push({ event: p.event, error: settled });
    else rest.push(restore(p, state));
  }

  const settle = (p: PendingEntry<E>, error: string | null) => {
    state.settled.set(p.event.id, error);
    state.failing.delete(p.event.id);
    if (error === null) return;
    rejected.push({ event: p.event, error });
    opts.metrics?.sinkFailed(opts.sink, 1);
  };
  const remember = (p: PendingEntry<E>) => {
    const { failures, failingSince, lastError, suspect, invalidTries } = p;
    state.failing.set(p.event.id, { failures, failingSince, lastError, suspect, invalidTries });
  };
  const fail = (p: PendingEntry<E>, error: string, now: number) => {
    p.failures++;
    p.lastError = error;
    p.failingSince ??= now;
    remember(p);
  };

  const backOff = async (failed: PendingEntry<E>[], kind: FailureKind, cause: string): Promise<void> => {
    opts.metrics?.sinkFailed(opts.sink, failed.length);
    opts.metrics?.sinkRetried?.(opts.sink, kind);
    const since = Math.min(...[...state.failing.values()].map((f) => f.failingSince ?? Date.now()));
    noteStall(state, opts, since, kind, cause, failed.length);
    const delayMs = fullJitterDelay(Math.max(...failed.map((p) => p.failures)), baseMs, maxMs);
    if (Date.now() + delayMs >= deadline) {
      const waiting = rest.length;
      throw new DeliveryDeferredError(
        `${opts.operation} stalled for ${((Date.now() - since) / 1000).toFixed(1)} s (${kind}): ${cause}; ${waiting} of ${pending.length} events waiting, resending in ${delayMs} ms`,
        delayMs,
      );
    }
    await sleep(delayMs, opts.signal);
  };

  while (rest.length > 0) {
    opts.signal?.throwIfAborted();
    const ready = eligible(rest);
    const suspects = ready.filter((p) => p.suspect);
    // A call refused as a whole is split into single-entry calls to find the entry at fault;
    // the suspect tried least goes first, so one entry refused every time cannot starve the rest.
    const call =
      suspects.length > 0 ? [suspects.reduce((a, b) => ((b.invalidTries ?? 0) < (a.invalidTries ?? 0) ? b : a))] : takeCall(ready, (p) => p.size, opts.limits);

    let results: EntryResult[];
    try {
      results = await opts.send(
        call.map((p) => p.entry),
        opts.signal,
      );
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const kind = failureKind(err);
      const error = errorText(err);
      if (kind === "invalid-request") {
        if (call.length > 1) {
          for (const p of call) {
            p.suspect = true;
            remember(p);
          }
          continue;
        }
        const lone = call[0]!;
        lone.invalidTries = (lone.invalidTries ?? 0) + 1;
        if (state.proven) {
          settle(lone, `${opts.operation} refused a call holding only this event: ${error}`);
          rest = rest.filter((p) => p !== lone);
          continue;
        }
      }
      const now = Date.now();
      for (const p of call) fail(p, error, now);
      await backOff(call, kind, error);
      continue;
    }

    state.proven = true;
    const failed: PendingEntry<E>[] = [];
    const done = new Set<PendingEntry<E>>();
    let stored = 0;
    let firstCode = "";
    const now = Date.now();
    call.forEach((p, i) => {
      const r = results[i];
      // AWS answers entry for entry; a short answer is treated like a transient failure of the rest.
      const code = r ? r.errorCode : "MissingResult";
      if (!code) {
        settle(p, null);
        done.add(p);
        stored++;
        return;
      }
      const error = `${code}: ${r?.errorMessage ?? "no result for this entry"}`;
      if (opts.classify(code) === "reject") {
        settle(p, `${opts.operation} refused the event: ${error}`);
        done.add(p);
        return;
      }
      firstCode ||= code;
      fail(p, error, now);
      failed.push(p);
    });
    if (stored > 0) opts.metrics?.sinkSent(opts.sink, stored);
    rest = rest.filter((p) => !done.has(p));
    if (failed.length > 0) await backOff(failed, failureKind({ name: firstCode }), failed[0]!.lastError ?? "unknown");
    else if (![...state.failing.values()].some((f) => f.failures > 0)) noteFlowing(state, opts);
  }
  noteFlowing(state, opts);
  state.finish();
  return rejected;
}

function restore<E>(p: PendingEntry<E>, state: DeliveryState): PendingEntry<E> {
  const f = state.failing.get(p.event.id);
  return f ? Object.assign(p, f) : p;
}

function noteStall<E>(state: DeliveryState, opts: DeliveryOptions<E>, since: number, kind: FailureKind, cause: string, failed: number): void {
  const starting = state.stalledSince === null;
  if (state.stalledSince !== since) {
    state.stalledSince = since;
    opts.metrics?.sinkStalled?.(opts.sink, since);
  }
  const now = Date.now();
  if (!starting && now - state.lastLoggedAt < STALL_LOG_EVERY_MS) return;
  state.lastLoggedAt = now;
  const fields = { sink: opts.sink, operation: opts.operation, kind, failed, stalledForMs: now - since, cause };
  const msg = `${opts.operation} failing (${kind}); holding back the affected keys and resending with backoff`;
  // Who can end it: time, or an operator (credentials, permissions, a missing bus or stream).
  if (kind === "configuration" || kind === "invalid-request") (opts.log?.error ?? opts.log?.warn)?.call(opts.log, fields, msg);
  else opts.log?.warn(fields, msg);
}

function noteFlowing<E>(state: DeliveryState, opts: DeliveryOptions<E>): void {
  if (state.stalledSince === null) return;
  const stalledForMs = Date.now() - state.stalledSince;
  state.stalledSince = null;
  state.lastLoggedAt = 0;
  opts.metrics?.sinkStalled?.(opts.sink, null);
  (opts.log?.info ?? opts.log?.warn)?.call(opts.log, { sink: opts.sink, operation: opts.operation, stalledForMs }, `${opts.operation} delivering again`);
}
