/**
 * The Kinesis sink of clickstream records: `analytics.kinesis`, a relay subscription on the
 * module's internal `analytics.events_ingested`, reads the stored rows of each batch and sends
 * them, enriched, to a Kinesis stream with PutRecords (partition key: the userId).
 *
 * Why a subscription and not a send from the request: the rows are committed with their
 * `events_ingested` in one transaction, and the subscription's checkpoint moves only once
 * Kinesis has stored every record, so an accepted event is never lost to a crash, an outage or
 * throttling; the request does not wait for AWS. Delivery is at least once (a crash after
 * PutRecords and before the checkpoint sends the batch again): consumers dedupe by `eventId`.
 *
 * Sending is the outbox relays' own `sendInCalls` (calls of up to 500 records and 5 MiB; only
 * the failed records are resent, with capped full-jitter backoff, for as long as the failure
 * lasts). Unlike the event relay it lets every record of a user into a call, instead of one per
 * key in flight: a clickstream is out of order by nature (each record carries its `eventTime`),
 * and one call per event of the busiest user would cap the stream's throughput.
 */

import { createHash } from "node:crypto";
import type { KinesisClient, PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import {
  type DeliveryState,
  defineSubscription,
  type EventEnvelope,
  type PendingEntry,
  putRecords,
  type SinkLog,
  sendInCalls,
  stateOf,
  utf8Length,
} from "../../src/platform.ts";
import { AnalyticsEventsIngested } from "./events.ts";

/** CLICKSTREAM_SINK is the relay's subscription (and checkpoint) name. */
export const CLICKSTREAM_SINK = "analytics.kinesis";

const MAX_RECORDS = 500;
const MAX_CALL_BYTES = 5 * 1024 * 1024;
const MAX_RECORD_BYTES = 1024 * 1024;
const MAX_KEY_BYTES = 256;

/** ClickstreamSinkOptions configures relayClickstream. */
export interface ClickstreamSinkOptions {
  client: KinesisClient;
  streamName: string;
  /** Backoff of resends: first ceiling and cap in ms (default 100 and 5000). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  log?: SinkLog;
}

/** clickstreamPartitionKey is the record's partition key: the userId, or its SHA-256 hex when longer than Kinesis takes. */
export const clickstreamPartitionKey = (userId: string): string =>
  utf8Length(userId) <= MAX_KEY_BYTES ? userId : createHash("sha256").update(userId).digest("hex");

/** relayClickstream is the subscription sending every stored clickstream row to Kinesis. */
export function relayClickstream(opts: ClickstreamSinkOptions) {
  const states = new Map<number, DeliveryState>();
  const encoder = new TextEncoder();
  return defineSubscription({
    name: CLICKSTREAM_SINK,
    on: [AnalyticsEventsIngested],
    kind: "sink",
    // Each event names up to 500 rows.
    batchSize: 20,
    batchHandler: async (events, ctx) => {
      const byBatch = new Map<string, EventEnvelope>(events.map((e) => [e.data.batchId, e]));
      const rows = await ctx.sql<{ event_id: string; batch_id: string; user_id: string; data: string }[]>`
        select c.event_id, c.batch_id, c.user_id, json_strip_nulls(json_build_object(
          'eventId', c.event_id, 'userId', c.user_id, 'sessionId', c.session_id, 'eventType', c.event_type, 'productId', c.product_id,
          'category', c.category, 'priceCents', c.price_cents, 'quantity', c.quantity, 'deviceType', c.device_type,
          'location', case when c.country is null then null else json_build_object('country', c.country, 'region', c.region) end,
          'query', c.query,
          'eventTime', to_char(c.event_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'clientTime', to_char(c.client_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'receivedAt', to_char(c.received_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'version', c.version, 'source', c.source, 'features', c.features))::text as data
        from analytics.clickstream c join unnest(${[...byBatch.keys()]}::uuid[]) with ordinality as b(id, ord) on c.batch_id = b.id
        order by b.ord, c.batch_index`;
      const rejected: { event: EventEnvelope; error: string }[] = [];
      const pending: PendingEntry<PutRecordsRequestEntry>[] = [];
      for (const r of rows) {
        const key = clickstreamPartitionKey(r.user_id);
        const data = encoder.encode(r.data);
        const size = data.byteLength + utf8Length(key);
        const cause = byBatch.get(r.batch_id)!;
        // Delivery state is kept per record: the record stands in as an "event" with the row's id.
        const event = { ...cause, id: r.event_id };
        if (size > MAX_RECORD_BYTES) rejected.push({ event, error: `clickstream record ${r.event_id} is ${size} bytes; Kinesis takes ${MAX_RECORD_BYTES}` });
        else pending.push({ event, entry: { PartitionKey: key, Data: data }, size, key, failures: 0 });
      }
      const refused = await sendInCalls(pending, {
        sink: CLICKSTREAM_SINK,
        operation: "PutRecords",
        limits: { maxEntries: MAX_RECORDS, maxBytes: MAX_CALL_BYTES },
        // Both per-record codes Kinesis answers (ProvisionedThroughputExceededException, InternalFailure) are transient.
        classify: () => "retry",
        eligible: (p) => [...p],
        send: putRecords(opts.client, opts.streamName),
        signal: ctx.signal,
        state: stateOf(states, ctx.partition),
        baseDelayMs: opts.baseDelayMs,
        maxDelayMs: opts.maxDelayMs,
        log: opts.log,
      });
      // A record Kinesis can never take dead-letters its batch's event (a redrive sends the batch again).
      const failed = new Map<string, string[]>();
      for (const r of [...rejected, ...refused]) {
        const id = byBatch.get((r.event.data as { batchId: string }).batchId)!.id;
        failed.set(id, [...(failed.get(id) ?? []), r.error]);
      }
      return {
        rejected: events
          .filter((e) => failed.has(e.id))
          .map((e) => ({ event: e, error: `${failed.get(e.id)!.length} records refused: ${failed.get(e.id)!.slice(0, 3).join("; ")}` })),
      };
    },
  });
}
