import type postgres from "postgres";
import type { Tx } from "../src/db/client.ts";
import type { AnyEventDefinition, EnvelopeOf, NewEvent } from "../src/events/definition.ts";
import type { EventEnvelope } from "./envelope.ts";
import type { EventPattern } from "./pattern.ts";

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

/** SubscriptionOptions are what every kind of subscription may set besides its events and body. */
export interface SubscriptionOptions {
  /** `<module>.<action>`, e.g. `inventory.reserve-stock`. Unique; it names the checkpoint. */
  name: string;
  /**
   * An EventBridge event pattern over the envelope that narrows the events named in `on`, e.g.
   * on their data. Any `type` it names must be among them (checked at declaration).
   */
  pattern?: EventPattern;
  /** Split by hash of `subject`; each partition keeps order and has its own checkpoint and lease. */
  partitions?: number;
  /** Attempts before an event is dead-lettered (default 5). */
  maxAttempts?: number;
  /** Where a new subscription starts: the whole log (default) or only events appended from now on. */
  startFrom?: "beginning" | "now";
  /** Events per read (default from config). */
  batchSize?: number;
  /**
   * After a delivery that did not fill its batch, wait this long (ms, default 0) before reading
   * again, so that under a steady stream each delivery carries more events. For a body whose cost
   * follows the distinct keys a delivery touches rather than its events (one upsert per user,
   * however many events the user had): its effects then trail the log by up to this much more.
   * A full batch is followed at once (the subscription is behind), and stop() cuts the wait short.
   */
  lingerMs?: number;
  /**
   * Whether its body may append events (default true). `false` for a body that only writes its
   * own tables (a read model, counters): each delivery transaction then declares, before its
   * first write, that it appends nothing, and the read horizon skips it (`../horizon.ts`), so a
   * long delivery no longer holds every other subscription back until it commits. An append from
   * such a body fails its delivery (AppendNotDeclaredError). Not for relays (sinks).
   */
  appends?: boolean;
  /** Backoff between attempts: base and cap in ms (default 100 and 30000), with full jitter. */
  backoff?: { baseMs: number; maxMs: number };
  /** Shown by the admin API, e.g. `sink` for EventBridge/Kinesis. */
  kind?: "handler" | "sink";
}

/** EventHandlerSubscription handles one event at a time, in one transaction with the checkpoint update. */
export interface EventHandlerSubscription<D extends AnyEventDefinition = AnyEventDefinition> extends SubscriptionOptions {
  /** The definitions it consumes: they make the SQL type filter, the catalog's subscriber list and the handler's event type. */
  on: readonly D[];
  handler(event: EnvelopeOf<D>, ctx: HandlerContext): Promise<void>;
  /**
   * How many events of *different subjects* a partition may handle at once, in its one
   * transaction (default 1: one event after another). Events of one subject are still handled in
   * log order, one at a time; events of different subjects may interleave. The handlers'
   * statements then share the transaction's connection pipelined, which is where the speed comes
   * from. Only for handlers that are safe so: a handler whose events only touch rows of their
   * own subject (or only insert, or update with one self-contained statement) is; one that reads
   * a row shared across subjects and writes it back from JavaScript is not, since handlers in one
   * transaction do not block each other on row locks. A failure rolls the batch back and it is
   * delivered again one event at a time, so retries and dead letters work as without it.
   */
  concurrency?: number;
  handleBatch?: never;
  batchHandler?: never;
}

/**
 * ProjectionSubscription handles a whole batch in one transaction with the checkpoint update,
 * exactly once for Postgres effects, like `handler` but able to write many rows in one statement.
 * A batch that throws is retried event by event, so a poison event is retried and dead-lettered
 * alone. There is no ambient causation (no single event is being handled): give each appended
 * event `causedBy` to keep lineage and correlation.
 */
export interface ProjectionSubscription<D extends AnyEventDefinition = AnyEventDefinition> extends SubscriptionOptions {
  on: readonly D[];
  handleBatch(events: EnvelopeOf<D>[], ctx: HandlerContext): Promise<void>;
  handler?: never;
  batchHandler?: never;
}

/**
 * RelaySubscription relays a batch to the outside world (sinks): runs outside any transaction,
 * at least once. Throwing retries the batch and counts an attempt, except DeliveryDeferredError
 * (a transient outage: retried after its delay, never counted); `rejected` events are
 * dead-lettered. Without `on`
 * it receives every public event of every module, as the EventBridge and Kinesis relays do.
 */
export interface RelaySubscription<D extends AnyEventDefinition = AnyEventDefinition> extends SubscriptionOptions {
  on?: readonly D[];
  // biome-ignore lint/suspicious/noConfusingVoidType: a relay that rejects nothing may simply return
  batchHandler(events: EnvelopeOf<D>[], ctx: HandlerContext): Promise<BatchResult | void>;
  handler?: never;
  handleBatch?: never;
}

/**
 * SubscriptionDefinition declares a durable consumer of the event log: one of the three bodies
 * (`handler`, `handleBatch`, `batchHandler`) over the events named in `on`. Declare it with
 * `defineSubscription` so that the body's events are typed from `on`.
 */
export type SubscriptionDefinition<D extends AnyEventDefinition = AnyEventDefinition> =
  | EventHandlerSubscription<D>
  | ProjectionSubscription<D>
  | RelaySubscription<D>;

/** Appender is the only way to publish: append inside the caller's transaction. */
export interface Appender {
  /**
   * append validates and writes events in one statement inside `tx`, returning the envelopes.
   * Events are made by their definitions: `UserRegistered.with(data, { subject })`.
   */
  append<E extends NewEvent>(tx: Tx, events: readonly E[]): Promise<EnvelopeOf<E["definition"]>[]>;
  /**
   * appendToStream appends to an event-sourced stream expecting it to be at `expectedVersion`
   * (0 for a new stream); a concurrent writer makes it throw StreamVersionConflictError.
   */
  appendToStream<E extends NewEvent>(
    tx: Tx,
    streamId: string,
    expectedVersion: number,
    events: readonly E[],
    options?: AppendToStreamOptions,
  ): Promise<EnvelopeOf<E["definition"]>[]>;
  /**
   * readStream returns a stream's events in version order. Given the definitions the stream may
   * hold, the events come typed as their union, and an event of any other type throws
   * UnexpectedStreamEventError (a bug: the stream's writer and reader disagree).
   *
   * @example const events = await outbox.readStream(tx, `order-${id}`, orderEvents);
   */
  readStream(tx: Tx, streamId: string): Promise<(EventEnvelope & { version: number })[]>;
  readStream<D extends AnyEventDefinition>(tx: Tx, streamId: string, on: readonly D[]): Promise<(EnvelopeOf<D> & { version: number })[]>;
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
  /**
   * Events outside the stream to append in the same insert, made from the stream's new events as
   * stored (the public events a command implies): one statement instead of two. Their envelopes
   * are not returned; they are appended exactly as `append` would append them.
   */
  alongside?: (appended: EventEnvelope[]) => readonly NewEvent[];
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
