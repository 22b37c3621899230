import { EventBridgeClient, type EventBridgeClientConfig, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { EventEnvelope } from "../envelope.ts";
import type { BatchResult, HandlerContext, OutboxMetrics, SubscriptionDefinition } from "../types.ts";
import { type EntryDisposition, type PendingEntry, type SinkLog, utf8Length } from "./batching.ts";
import { type DeliveryState, sendInCalls, stateOf } from "./delivery.ts";
import { AWS_REQUEST_TIMEOUT_MS } from "./retry.ts";

/** EVENTBRIDGE_SINK is the subscription (and checkpoint) name of the EventBridge relay. */
export const EVENTBRIDGE_SINK = "outbox.eventbridge";

/** PUT_EVENTS_MAX_ENTRIES is the PutEvents limit on entries per call. */
export const PUT_EVENTS_MAX_ENTRIES = 10;

/** PUT_EVENTS_MAX_BYTES is the PutEvents limit on the summed entry size of one call (256 KiB). */
export const PUT_EVENTS_MAX_BYTES = 262_144;

/** DETAIL_TYPE_MAX_CHARS is the longest DetailType EventBridge accepts. */
export const DETAIL_TYPE_MAX_CHARS = 128;

/** EventBridgeSinkOptions configures createEventBridgeSink. */
export interface EventBridgeSinkOptions {
  client: EventBridgeClient;
  busName: string;
  /** Prepended to the envelope's source, e.g. `app.` + `users` = `app.users`. */
  sourcePrefix: string;
  /** sinkSent counts stored entries; sinkFailed counts failed attempts per entry and dead-lettered entries. */
  metrics?: OutboxMetrics;
  /** First backoff ceiling in ms; doubles per retry, with full jitter (default 100). */
  baseDelayMs?: number;
  /** Cap of one backoff in ms (default 5000); resending goes on as long as the failure lasts. */
  maxDelayMs?: number;
  /** How long one handler call resends before handing the batch back to the worker (default 2000). */
  sliceMs?: number;
  log?: SinkLog;
}

// Per-entry codes from the PutEventsResultEntry reference. It lists InternalFailure and
// ThrottlingException as retryable, and as non-retryable both content problems (InvalidArgument,
// MalformedDetail, RedactionFailure) and access problems (AccessDeniedException,
// InvalidAccountIdException, NotAuthorizedForSourceException, NotAuthorizedForDetailTypeException).
// Only content problems are the event's fault, so only they are dead-lettered. An access problem
// is resent with backoff until an operator fixes IAM: dead-lettering it would take it out of its
// subject's order (and every other event with it). Unknown codes are resent too: an event is
// never given up on a guess.
const REJECT_CODES = new Set(["InvalidArgument", "MalformedDetail", "RedactionFailure", "ValidationException"]);

/** classifyPutEventsError says what to do with an entry PutEvents refused with `code`. */
export function classifyPutEventsError(code: string): EntryDisposition {
  return REJECT_CODES.has(code) ? "reject" : "retry";
}

// The AWS formula (14 bytes for Time, UTF-8 bytes of Source, DetailType, Detail and each Resource)
// leaves EventBusName out; counting it too costs a few bytes per entry and can never put a call
// over the limit should AWS count it after all.
/** putEventsEntrySize returns an entry's size as EventBridge counts it against the 256 KiB limit, plus the bus name. */
export function putEventsEntrySize(entry: PutEventsRequestEntry): number {
  let size = entry.Time ? 14 : 0;
  size += utf8Length(entry.Source ?? "") + utf8Length(entry.DetailType ?? "") + utf8Length(entry.Detail ?? "");
  size += utf8Length(entry.EventBusName ?? "");
  for (const r of entry.Resources ?? []) size += utf8Length(r);
  return size;
}

/** toPutEventsEntry maps an envelope to a PutEvents entry: the whole envelope travels as Detail. */
export function toPutEventsEntry(event: EventEnvelope, busName: string, sourcePrefix: string): PutEventsRequestEntry {
  const time = new Date(event.time);
  return {
    Source: sourcePrefix + event.source,
    DetailType: event.type,
    Detail: JSON.stringify(event),
    EventBusName: busName,
    // An unparseable time would fail serialization of the whole call; EventBridge then stamps its own.
    ...(Number.isNaN(time.getTime()) ? {} : { Time: time }),
  };
}

/**
 * createEventBridgeSink returns the subscription relaying every public event (it names no `on`) to a bus with
 * PutEvents in calls of at most 10 entries and 256 KiB, one entry per subject in flight so each subject keeps log
 * order. It resends through throttling and outages for as long as they last, and returns only events EventBridge
 * can never accept in `rejected` for the worker to dead-letter.
 */
export function createEventBridgeSink(opts: EventBridgeSinkOptions): SubscriptionDefinition {
  const states = new Map<number, DeliveryState>();
  const batchHandler = async (events: EventEnvelope[], ctx: HandlerContext): Promise<BatchResult> => {
    const rejected: BatchResult["rejected"] = [];
    const pending: PendingEntry<PutEventsRequestEntry>[] = [];
    for (const event of events) {
      const entry = toPutEventsEntry(event, opts.busName, opts.sourcePrefix);
      const size = putEventsEntrySize(entry);
      const detailTypeChars = [...event.type].length;
      if (detailTypeChars > DETAIL_TYPE_MAX_CHARS) {
        rejected.push({ event, error: `DetailType (event type) is ${detailTypeChars} characters; EventBridge allows ${DETAIL_TYPE_MAX_CHARS}` });
      } else if (size > PUT_EVENTS_MAX_BYTES) {
        rejected.push({ event, error: `entry is ${size} bytes; PutEvents allows ${PUT_EVENTS_MAX_BYTES}` });
      } else {
        pending.push({ event, entry, size, key: event.subject, failures: 0 });
      }
    }
    if (rejected.length > 0) opts.metrics?.sinkFailed(EVENTBRIDGE_SINK, rejected.length);
    const refused = await sendInCalls(pending, {
      sink: EVENTBRIDGE_SINK,
      operation: "PutEvents",
      limits: { maxEntries: PUT_EVENTS_MAX_ENTRIES, maxBytes: PUT_EVENTS_MAX_BYTES },
      classify: classifyPutEventsError,
      send: async (entries, signal) => {
        const out = await opts.client.send(new PutEventsCommand({ Entries: entries }), { abortSignal: signal });
        return (out.Entries ?? []).map((e) => ({ errorCode: e.ErrorCode, errorMessage: e.ErrorMessage }));
      },
      signal: ctx.signal,
      state: stateOf(states, ctx.partition),
      baseDelayMs: opts.baseDelayMs,
      maxDelayMs: opts.maxDelayMs,
      sliceMs: opts.sliceMs,
      metrics: opts.metrics,
      log: opts.log,
    });
    return { rejected: [...rejected, ...refused] };
  };
  return { name: EVENTBRIDGE_SINK, kind: "sink", pattern: {}, batchHandler };
}

/** createEventBridgeClient builds the client the sink expects; `credentials` is for emulators, production uses the default chain. */
export function createEventBridgeClient(region: string, endpoint?: string, credentials?: EventBridgeClientConfig["credentials"]): EventBridgeClient {
  return new EventBridgeClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    // The sink retries, resending only the failed entries in subject order; SDK retries on top
    // would resend entries already stored.
    maxAttempts: 1,
    // Bounded (below the lease) so a hung call fails over to the sink's retry instead of stalling the worker.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: AWS_REQUEST_TIMEOUT_MS }),
  });
}
