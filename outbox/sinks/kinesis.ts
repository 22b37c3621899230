import { createHash } from "node:crypto";
import { KinesisClient, type KinesisClientConfig, PutRecordsCommand, type PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { EventEnvelope } from "../envelope.ts";
import type { BatchResult, HandlerContext, OutboxMetrics, SubscriptionDefinition } from "../types.ts";
import { type PendingEntry, type SinkLog, utf8Length } from "./batching.ts";
import { type DeliveryState, sendInCalls, stateOf } from "./delivery.ts";
import { AWS_REQUEST_TIMEOUT_MS } from "./retry.ts";

/** KINESIS_SINK is the subscription (and checkpoint) name of the Kinesis relay. */
export const KINESIS_SINK = "outbox.kinesis";

/** PUT_RECORDS_MAX_RECORDS is the PutRecords limit on records per call. */
export const PUT_RECORDS_MAX_RECORDS = 500;

/** PUT_RECORDS_MAX_BYTES is the PutRecords limit on data plus partition keys per call (5 MiB). */
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;

/** KINESIS_MAX_RECORD_BYTES is the limit on one record's data plus partition key (1 MiB). */
export const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;

/** PARTITION_KEY_MAX is the longest partition key Kinesis accepts. */
export const PARTITION_KEY_MAX = 256;

/** KinesisSinkOptions configures createKinesisSink. */
export interface KinesisSinkOptions {
  client: KinesisClient;
  streamName: string;
  /** sinkSent counts stored records; sinkFailed counts failed attempts per record and dead-lettered records. */
  metrics?: OutboxMetrics;
  /** First backoff ceiling in ms; doubles per retry, with full jitter (default 100). */
  baseDelayMs?: number;
  /** Cap of one backoff in ms (default 5000); resending goes on as long as the failure lasts. */
  maxDelayMs?: number;
  /** How long one handler call resends before handing the batch back to the worker (default 2000). */
  sliceMs?: number;
  log?: SinkLog;
}

/** partitionKeyFor returns the envelope's subject, or its SHA-256 hex when Kinesis would refuse the subject. */
export function partitionKeyFor(event: EventEnvelope): string {
  // Limit counted in UTF-8 bytes, which is never less than characters, so either reading of the
  // AWS limit holds; the hash keeps one subject on one key (and shard) either way.
  const subject = event.subject;
  if (subject.length > 0 && utf8Length(subject) <= PARTITION_KEY_MAX) return subject;
  return createHash("sha256").update(subject).digest("hex");
}

/**
 * createKinesisSink returns the subscription relaying every public event (it names no `on`) to a stream with
 * PutRecords keyed by subject, one record per key in flight so each key keeps log order through partial failures
 * (see firstPerKey). It resends through throttling and outages for as long as they last, and returns only records
 * Kinesis can never accept (over 1 MiB) in `rejected`.
 */
export function createKinesisSink(opts: KinesisSinkOptions): SubscriptionDefinition {
  const encoder = new TextEncoder();
  const states = new Map<number, DeliveryState>();
  const batchHandler = async (events: EventEnvelope[], ctx: HandlerContext): Promise<BatchResult> => {
    const rejected: BatchResult["rejected"] = [];
    const pending: PendingEntry<PutRecordsRequestEntry>[] = [];
    for (const event of events) {
      const key = partitionKeyFor(event);
      const data = encoder.encode(JSON.stringify(event));
      const entry: PutRecordsRequestEntry = { PartitionKey: key, Data: data };
      const size = data.byteLength + utf8Length(key);
      if (size > KINESIS_MAX_RECORD_BYTES) {
        rejected.push({ event, error: `record is ${size} bytes (data + partition key); Kinesis allows ${KINESIS_MAX_RECORD_BYTES}` });
      } else {
        pending.push({ event, entry, size, key, failures: 0 });
      }
    }
    if (rejected.length > 0) opts.metrics?.sinkFailed(KINESIS_SINK, rejected.length);
    const refused = await sendInCalls(pending, {
      sink: KINESIS_SINK,
      operation: "PutRecords",
      limits: { maxEntries: PUT_RECORDS_MAX_RECORDS, maxBytes: PUT_RECORDS_MAX_BYTES },
      // The PutRecordsResultEntry reference lists two per-record codes, ProvisionedThroughputExceededException
      // and InternalFailure, both transient; an unknown one is resent too. A record Kinesis can never take
      // is refused before sending (size), or the whole call is refused as invalid (then sendInCalls finds it).
      classify: () => "retry",
      send: putRecords(opts.client, opts.streamName),
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
  return { name: KINESIS_SINK, kind: "sink", pattern: {}, batchHandler };
}

/** createKinesisClient builds the client the sink expects; `credentials` is for emulators, production uses the default chain. */
export function createKinesisClient(region: string, endpoint?: string, credentials?: KinesisClientConfig["credentials"]): KinesisClient {
  return new KinesisClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    // The sink retries, resending only failed records in key order; SDK retries on top would
    // resend records already stored.
    maxAttempts: 1,
    // HTTP/1.1: the SDK's default HTTP/2 handler for Kinesis fails against kinesalite. Timeouts are
    // bounded so a hung call fails over to the sink's retry instead of stalling the worker.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: AWS_REQUEST_TIMEOUT_MS }),
  });
}

/**
 * putRecords is the `send` of a Kinesis relay: one PutRecords call to `streamName`, answering each
 * record's error code (none when stored), in the order sent.
 */
export function putRecords(client: KinesisClient, streamName: string) {
  return async (records: PutRecordsRequestEntry[], signal?: AbortSignal) => {
    const out = await client.send(new PutRecordsCommand({ StreamName: streamName, Records: records }), { abortSignal: signal });
    return (out.Records ?? []).map((r) => ({ errorCode: r.ErrorCode, errorMessage: r.ErrorMessage }));
  };
}
