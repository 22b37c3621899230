import { createHash } from "node:crypto";
import { KinesisClient, PutRecordsCommand, type KinesisClientConfig, type PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { EventEnvelope } from "../envelope.ts";
import type { BatchResult, HandlerContext, OutboxMetrics, SubscriptionDefinition } from "../types.ts";
import { sendInCalls, utf8Length, type PendingEntry, type SinkLog } from "./batching.ts";

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
  /** Resends of one record before the batch is handed back to the worker (default 5). */
  maxRetries?: number;
  /** First backoff ceiling in ms; doubles per retry, with full jitter (default 100). */
  baseDelayMs?: number;
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

// Why one record per key per call: PutRecords stores each record independently, so when record
// n of key K fails, record n+1 of K in the same call may still be stored and end up ahead of it
// (AWS: "PutRecords doesn't guarantee the ordering of records"). Nothing can undo a stored record,
// so the only way to keep per-key order through partial failures is to never have two records of
// one key in flight at once; the next record of K goes out only once K's previous one is stored.
// SequenceNumberForOrdering does not help: it exists on PutRecord only, one record per call, which
// is the same serialisation with up to 500 times the calls. The cost is one call per record of the
// busiest key in the batch; distinct keys still share calls of up to 500 records.
/** firstPerKey keeps only the earliest pending record of each partition key. */
export function firstPerKey(pending: readonly PendingEntry<PutRecordsRequestEntry>[]): PendingEntry<PutRecordsRequestEntry>[] {
  const seen = new Set<string>();
  return pending.filter((p) => {
    const key = p.entry.PartitionKey!;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * createKinesisSink returns the subscription relaying every public event (it names no `on`) to a stream with PutRecords keyed by subject,
 * keeping per-key order through partial failures and returning records over 1 MiB in `rejected`.
 */
export function createKinesisSink(opts: KinesisSinkOptions): SubscriptionDefinition {
  const encoder = new TextEncoder();
  const batchHandler = async (events: EventEnvelope[], _ctx: HandlerContext): Promise<BatchResult> => {
    const rejected: BatchResult["rejected"] = [];
    const pending: PendingEntry<PutRecordsRequestEntry>[] = [];
    for (const event of events) {
      const entry = { PartitionKey: partitionKeyFor(event), Data: encoder.encode(JSON.stringify(event)) };
      const size = entry.Data.byteLength + utf8Length(entry.PartitionKey);
      if (size > KINESIS_MAX_RECORD_BYTES) {
        rejected.push({ event, error: `record is ${size} bytes (data + partition key); Kinesis allows ${KINESIS_MAX_RECORD_BYTES}` });
      } else {
        pending.push({ event, entry, size, failures: 0 });
      }
    }
    if (rejected.length > 0) opts.metrics?.sinkFailed(KINESIS_SINK, rejected.length);
    const refused = await sendInCalls(pending, {
      sink: KINESIS_SINK,
      operation: "PutRecords",
      limits: { maxEntries: PUT_RECORDS_MAX_RECORDS, maxBytes: PUT_RECORDS_MAX_BYTES },
      eligible: firstPerKey,
      // The documented per-record codes (ProvisionedThroughputExceededException, InternalFailure)
      // are both transient; anything else is resent too and fails the batch if it persists.
      classify: () => "retry",
      send: async (records) => {
        const out = await opts.client.send(new PutRecordsCommand({ StreamName: opts.streamName, Records: records }));
        return (out.Records ?? []).map((r) => ({ errorCode: r.ErrorCode, errorMessage: r.ErrorMessage }));
      },
      maxRetries: opts.maxRetries,
      baseDelayMs: opts.baseDelayMs,
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
    // The sink retries, resending only failed records in key order; SDK retries would multiply attempts.
    maxAttempts: 1,
    // HTTP/1.1: the SDK's default HTTP/2 handler for Kinesis fails against kinesalite. Timeouts are
    // bounded so a hung call fails over to the sink's retry instead of stalling the worker.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 }),
  });
}
