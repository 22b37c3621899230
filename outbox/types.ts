import type postgres from "postgres";
import type { Tx } from "../src/db/client.ts";
import type { EventEnvelope, NewEvent } from "./envelope.ts";

/** HandlerContext is what a subscription handler gets besides the event. */
export interface HandlerContext {
  /**
   * The transaction the checkpoint update commits in: write through it for exactly-once
   * effects. Batch handlers (sinks) get the pool instead, since they call out to AWS.
   */
  tx: Tx;
  /** The same transaction as a postgres.js client, for hot paths (no query-builder work). */
  sql: postgres.Sql;
  subscription: string;
  partition: number;
  /** The attempt number, 1 on first delivery. */
  attempt: number;
  /** Aborted when the worker stops: a handler that waits (a sink backing off) gives up at once. */
  signal?: AbortSignal;
}

/** BatchResult lets a batch handler reject single events permanently (they are dead-lettered). */
export interface BatchResult {
  rejected: { event: EventEnvelope; error: string }[];
}

/**
 * SubscriptionDefinition declares a durable consumer of the event log. Its body is exactly one
 * of three kinds (see `worker/subscription.ts`): `handler`, `handleBatch` or `batchHandler`.
 */
export interface SubscriptionDefinition {
  /** `<module>.<action>`, e.g. `inventory.reserve-stock`. Unique; it names the checkpoint. */
  name: string;
  /** An EventBridge event pattern applied to the envelope. */
  pattern: Record<string, unknown>;
  /** A per-event handler: one event per call, in one transaction with the checkpoint update. */
  handler?: (event: EventEnvelope, ctx: HandlerContext) => Promise<void>;
  /**
   * A batch projection: a whole batch in one transaction with the checkpoint update, exactly once for
   * Postgres effects, like `handler` but able to write many rows in one statement (projections).
   * A batch that throws is retried event by event, so a poison event is retried and
   * dead-lettered alone. There is no ambient causation (no single event is being handled): give
   * each appended event `causedBy` to keep lineage and correlation.
   */
  handleBatch?: (events: EventEnvelope[], ctx: HandlerContext) => Promise<void>;
  /**
   * A relay: sends a batch to the outside world (sinks), outside any transaction, at least once.
   * Throwing retries the batch and counts an attempt, except DeliveryDeferredError (a transient
   * outage: retried after its delay, never counted); `rejected` events are dead-lettered.
   */
  batchHandler?: (events: EventEnvelope[], ctx: HandlerContext) => Promise<BatchResult | void>;
  /** Split by hash of `subject`; each partition keeps order and has its own checkpoint and lease. */
  partitions?: number;
  /** Attempts before an event is dead-lettered (default 5). */
  maxAttempts?: number;
  /** Where a new subscription starts: the whole log (default) or only events appended from now on. */
  startFrom?: "beginning" | "now";
  /** Events per read (default from config). */
  batchSize?: number;
  /** Backoff between attempts: base and cap in ms (default 100 and 30000), with full jitter. */
  backoff?: { baseMs: number; maxMs: number };
  /** Shown by the admin API, e.g. `sink` for EventBridge/Kinesis. */
  kind?: "handler" | "sink";
}

/** Appender is the only way to publish: append inside the caller's transaction. */
export interface Appender {
  /** append validates and writes events in one statement inside `tx`, returning the envelopes. */
  append(tx: Tx, events: NewEvent[]): Promise<EventEnvelope[]>;
  /**
   * appendToStream appends to an event-sourced stream expecting it to be at `expectedVersion`
   * (0 for a new stream); a concurrent writer makes it throw StreamVersionConflictError.
   */
  appendToStream(tx: Tx, streamId: string, expectedVersion: number, events: NewEvent[], options?: AppendToStreamOptions): Promise<EventEnvelope[]>;
  /** readStream returns a stream's events in version order. */
  readStream(tx: Tx, streamId: string): Promise<(EventEnvelope & { version: number })[]>;
}

/** AppendToStreamOptions tune appendToStream for callers that already know the stream's version. */
export interface AppendToStreamOptions {
  /**
   * The caller read `expectedVersion` from the stream in this same transaction (handleCommand
   * does), so the version is not read again. Versions only grow and leave no gaps, so a writer
   * that appended since then took `expectedVersion + 1`, and the unique (stream_id,
   * stream_version) index still turns it into StreamVersionConflictError. Never set it for a
   * version that came from elsewhere (a client's If-Match): a stale one could then leave a gap.
   */
  versionRead?: boolean;
  /**
   * Check the insert at commit instead of now, like `append` (no round trip of its own): a
   * conflict then fails the transaction, with StreamVersionConflictError, when it commits.
   */
  writeBehind?: boolean;
}

/** OutboxMetrics receives counters from workers and sinks (prom-client in production). */
export interface OutboxMetrics {
  processed(subscription: string, partition: number, count: number): void;
  failed(subscription: string, partition: number): void;
  deadLettered(subscription: string): void;
  handlerDuration(subscription: string, seconds: number): void;
  sinkSent(sink: string, count: number): void;
  sinkFailed(sink: string, count: number): void;
  /** sinkRetried counts one backoff of a sink after a transient failure, by kind (throttled, transient, configuration, ...). */
  sinkRetried?(sink: string, kind: string): void;
  /** sinkStalled says since when (epoch ms) a sink's oldest undelivered entry has been failing, or null once it flows again. */
  sinkStalled?(sink: string, since: number | null): void;
}

/** noopMetrics is the default when metrics are off. */
export const noopMetrics: OutboxMetrics = {
  processed() {},
  failed() {},
  deadLettered() {},
  handlerDuration() {},
  sinkSent() {},
  sinkFailed() {},
};
