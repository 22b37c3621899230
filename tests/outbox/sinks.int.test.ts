import { afterAll, beforeAll, beforeEach, describe, expect, it } from "bun:test";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { type KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { DeliveryDeferredError } from "../../outbox/errors.ts";
import {
  createEventBridgeClient,
  createEventBridgeSink,
  createKinesisClient,
  createKinesisSink,
  type PendingEntry,
  partitionKeyFor,
  putEventsEntrySize,
  sendInCalls,
  toPutEventsEntry,
} from "../../outbox/sinks/index.ts";
import type { BatchResult, HandlerContext, OutboxMetrics, SubscriptionDefinition } from "../../outbox/types.ts";
import {
  createStream,
  type EventBridgeEmulator,
  FAKE_CREDENTIALS,
  type KinesisEmulator,
  readStream,
  startEventBridge,
  startKinesis,
} from "../support/emulators.ts";

const REGION = "us-east-1";
const BUS = "app-bus";
const PREFIX = "app.";

const ctx = (subscription: string, signal?: AbortSignal): HandlerContext => ({
  tx: undefined as never,
  sql: undefined as never,
  subscription,
  partition: 0,
  attempt: 1,
  signal,
});

const event = (i: number, over: Partial<EventEnvelope> = {}): EventEnvelope => ({
  specversion: "1.0",
  id: `evt-${String(i).padStart(5, "0")}`,
  source: "orders",
  type: "orders.order-placed",
  subject: `order-${i}`,
  time: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, i)).toISOString(),
  datacontenttype: "application/json",
  data: { i },
  correlationid: "corr-1",
  ...over,
});

const events = (n: number, over: (i: number) => Partial<EventEnvelope> = () => ({})): EventEnvelope[] => Array.from({ length: n }, (_, i) => event(i, over(i)));

function recordingMetrics() {
  const counts = { sent: 0, failed: 0, retried: 0 };
  const stalls: (number | null)[] = [];
  const metrics: OutboxMetrics = {
    processed() {},
    failed() {},
    deadLettered() {},
    handlerDuration() {},
    sinkSent: (_sink, n) => void (counts.sent += n),
    sinkFailed: (_sink, n) => void (counts.failed += n),
    sinkRetried: () => void counts.retried++,
    sinkStalled: (_sink, since) => void stalls.push(since),
  };
  return { counts, stalls, metrics };
}

const warnings: string[] = [];
const log = { warn: (_obj: object, msg: string) => void warnings.push(msg) };

const run = async (sink: SubscriptionDefinition, batch: EventEnvelope[], signal?: AbortSignal): Promise<BatchResult> =>
  (await sink.batchHandler!(batch, ctx(sink.name, signal))) ?? { rejected: [] };

/** deferral runs the sink once and returns the DeliveryDeferredError it must throw. */
const deferral = async (sink: SubscriptionDefinition, batch: EventEnvelope[]): Promise<DeliveryDeferredError> => {
  const err = await run(sink, batch).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryDeferredError);
  return err as DeliveryDeferredError;
};

const idOfDetail = (detail: string): string => (JSON.parse(detail) as EventEnvelope).id;
const idOfData = (data: string): string => (JSON.parse(data) as EventEnvelope).id;

describe("EventBridge sink against a PutEvents emulator", () => {
  let eb: EventBridgeEmulator;
  let client: EventBridgeClient;
  const sink = (over: { sliceMs?: number; maxDelayMs?: number; metrics?: OutboxMetrics } = {}) =>
    createEventBridgeSink({ client, busName: BUS, sourcePrefix: PREFIX, baseDelayMs: 1, log, ...over });

  beforeAll(() => {
    eb = startEventBridge();
    client = createEventBridgeClient(REGION, eb.endpoint, FAKE_CREDENTIALS);
  });
  afterAll(async () => {
    client.destroy();
    await eb.stop();
  });
  beforeEach(() => eb.reset());

  it("sends 25 events in calls of at most 10 entries, mapping the envelope onto each entry", async () => {
    const { counts, metrics } = recordingMetrics();
    const batch = events(25);
    const result = await run(sink({ metrics }), batch);

    expect(result.rejected).toEqual([]);
    expect(eb.calls.map((c) => c.entries.length)).toEqual([10, 10, 5]);
    expect(eb.calls.every((c) => c.outcome === "ok")).toBe(true);
    expect(eb.received.map((e) => idOfDetail(e.Detail))).toEqual(batch.map((e) => e.id));
    const first = eb.received[0]!;
    expect(first).toMatchObject({ Source: "app.orders", DetailType: "orders.order-placed", EventBusName: BUS });
    expect(JSON.parse(first.Detail)).toEqual(batch[0]!);
    expect(first.Time! * 1000).toBe(Date.parse(batch[0]!.time));
    expect(counts).toEqual({ sent: 25, failed: 0, retried: 0 });
  });

  it("packs large events greedily into calls of at most 256 KiB", async () => {
    // ~60 KB each: four fit in 256 KiB, a fifth does not.
    const batch = events(10, () => ({ data: { blob: "x".repeat(60_000) } }));
    const result = await run(sink(), batch);

    expect(result.rejected).toEqual([]);
    expect(eb.calls.map((c) => c.entries.length)).toEqual([4, 4, 2]);
    for (const c of eb.calls) expect(c.bytes).toBeLessThanOrEqual(262_144);
    expect(eb.calls.every((c) => c.outcome === "ok")).toBe(true);
    expect(eb.received).toHaveLength(10);
  });

  it("rejects an event whose entry exceeds 256 KiB and sends the others", async () => {
    const batch = [event(0), event(1, { data: { blob: "x".repeat(300_000) } }), event(2)];
    const result = await run(sink(), batch);

    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]!.event.id).toBe(batch[1]!.id);
    expect(result.rejected[0]!.error).toMatch(/^entry is \d+ bytes; PutEvents allows 262144$/);
    expect(eb.received.map((e) => idOfDetail(e.Detail))).toEqual([batch[0]!.id, batch[2]!.id]);
  });

  it("rejects an event whose DetailType exceeds 128 characters; 128 is accepted", async () => {
    const batch = [event(0, { type: "t".repeat(129) }), event(1, { type: "t".repeat(128) })];
    const result = await run(sink(), batch);

    expect(result.rejected.map((r) => r.event.id)).toEqual([batch[0]!.id]);
    expect(result.rejected[0]!.error).toContain("129 characters; EventBridge allows 128");
    expect(eb.received.map((e) => idOfDetail(e.Detail))).toEqual([batch[1]!.id]);
  });

  it("resends only the entries that failed", async () => {
    eb.failEntries({ indices: [2, 5], code: "InternalFailure" });
    const { counts, metrics } = recordingMetrics();
    const batch = events(10);
    const result = await run(sink({ metrics }), batch);

    expect(result.rejected).toEqual([]);
    expect(eb.calls).toHaveLength(2);
    expect(eb.calls[0]!.failed).toEqual([2, 5]);
    expect(eb.calls[1]!.entries.map((e) => idOfDetail(e.Detail))).toEqual([batch[2]!.id, batch[5]!.id]);
    expect(new Set(eb.received.map((e) => idOfDetail(e.Detail))).size).toBe(10);
    expect(counts).toEqual({ sent: 10, failed: 2, retried: 1 });
  });

  it("dead-letters entries EventBridge refuses permanently without resending them", async () => {
    eb.failEntries({ indices: [1], code: "MalformedDetail", message: "bad json" });
    const batch = events(3);
    const result = await run(sink(), batch);

    expect(result.rejected).toEqual([{ event: batch[1]!, error: "PutEvents refused the event: MalformedDetail: bad json" }]);
    expect(eb.calls).toHaveLength(1);
  });

  it("resends an entry refused for lack of permission until it is allowed, never dead-lettering it", async () => {
    // AWS lists the NotAuthorized* codes as non-retryable, but the event is fine: once IAM is
    // fixed it is accepted, and dead-lettering it would take it out of its subject's order.
    eb.failEntries({ indices: [0], code: "NotAuthorizedForSourceException", calls: 3 });
    const batch = events(3);
    const result = await run(sink(), batch);

    expect(result.rejected).toEqual([]);
    expect(eb.calls.map((c) => c.failed)).toEqual([[0], [0], [0], []]);
    expect(eb.received.map((e) => idOfDetail(e.Detail)).sort()).toEqual(batch.map((e) => e.id));
  });

  it("backs off and retries calls throttled as a whole, logging when the stall starts and ends", async () => {
    eb.throttleCalls(2);
    warnings.length = 0;
    const { counts, stalls, metrics } = recordingMetrics();
    const result = await run(sink({ metrics }), events(5));

    expect(result.rejected).toEqual([]);
    expect(eb.calls.map((c) => c.outcome)).toEqual(["throttled", "throttled", "ok"]);
    expect(eb.received).toHaveLength(5);
    expect(warnings).toEqual([expect.stringContaining("PutEvents failing (throttled)"), "PutEvents delivering again"]);
    expect(counts.retried).toBe(2);
    expect(stalls).toEqual([expect.any(Number), null]);
  });

  it("keeps each subject in log order through a partial failure, one entry per subject in flight", async () => {
    // a0 a1 a2 b0 b1: a1 fails twice; a2 must not overtake it, b keeps flowing meanwhile.
    const batch = events(5, (i) => ({ subject: i < 3 ? "order-a" : "order-b" }));
    eb.failEntries({ where: (e) => idOfDetail(e.Detail) === batch[1]!.id, code: "InternalFailure", calls: 2 });
    const result = await run(sink(), batch);

    expect(result.rejected).toEqual([]);
    for (const c of eb.calls) expect(new Set(c.entries.map((e) => (JSON.parse(e.Detail) as EventEnvelope).subject)).size).toBe(c.entries.length);
    const order = (subject: string) =>
      eb.received
        .map((e) => JSON.parse(e.Detail) as EventEnvelope)
        .filter((e) => e.subject === subject)
        .map((e) => e.id);
    expect(order("order-a")).toEqual(batch.slice(0, 3).map((e) => e.id));
    expect(order("order-b")).toEqual(batch.slice(3).map((e) => e.id));
  });

  it("hands a batch back as deferred while an entry keeps failing, then resumes without resending what was stored", async () => {
    const s = sink({ sliceMs: 150, maxDelayMs: 20 });
    const batch = events(3);
    eb.failEntries({ indices: [0], code: "ThrottlingException", calls: Infinity });
    const err = await deferral(s, batch);
    expect(err.message).toMatch(/^PutEvents stalled for \d+\.\d s \(throttled\): ThrottlingException: injected ThrottlingException; 1 of 3 events waiting/);
    expect(err.retryInMs).toBeGreaterThanOrEqual(0);
    expect(eb.received.map((e) => idOfDetail(e.Detail))).toEqual([batch[1]!.id, batch[2]!.id]);

    // The worker calls again with the same batch once the throttling is over.
    eb.reset();
    const result = await run(s, batch);
    expect(result.rejected).toEqual([]);
    expect(eb.calls.map((c) => c.entries.length)).toEqual([1]);
    expect(eb.received.map((e) => idOfDetail(e.Detail))).toEqual([batch[0]!.id]);
  });

  it("never gives up on calls throttled as a whole: it defers, and a stop aborts the backoff at once", async () => {
    eb.throttleCalls(1_000_000);
    const s = sink({ sliceMs: 100, maxDelayMs: 20 });
    const err = await deferral(s, events(3));
    expect(err.message).toContain("(throttled): ThrottlingException: Rate exceeded");

    const stop = new AbortController();
    const longBackoff = sink({ sliceMs: 60_000, maxDelayMs: 60_000 });
    const started = Date.now();
    const pending = run(longBackoff, events(3), stop.signal);
    setTimeout(() => stop.abort(new Error("stopping")), 300);
    await expect(pending).rejects.toThrow("stopping");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("sizes entries by the AWS formula in UTF-8 bytes, counting the bus name on top", async () => {
    const batch = [event(0, { data: { text: "naïve — ✓ 😀" } })];
    await run(sink(), batch);
    const awsBytes = 14 + Buffer.byteLength("app.orders") + Buffer.byteLength("orders.order-placed") + Buffer.byteLength(JSON.stringify(batch[0]));
    // The call that carried this event (under load, a call aborted by the test before may still
    // reach the emulator after its reset).
    const call = eb.calls.find((c) => c.entries.some((e) => idOfDetail(e.Detail) === batch[0]!.id));
    expect(call?.bytes).toBe(awsBytes);
    expect(putEventsEntrySize(toPutEventsEntry(batch[0]!, BUS, PREFIX))).toBe(awsBytes + Buffer.byteLength(BUS));
  });

  it("fills a call up to exactly 256 KiB and sends a 256 KiB entry, but not one byte more", async () => {
    const sized = (i: number, bytes: number) => {
      const base = putEventsEntrySize(toPutEventsEntry(event(i, { data: { blob: "" } }), BUS, PREFIX));
      return event(i, { data: { blob: "x".repeat(bytes - base) } });
    };
    const result = await run(sink(), [sized(0, 131_072), sized(1, 131_072), sized(2, 262_144), sized(3, 262_145)]);

    expect(result.rejected.map((r) => r.error)).toEqual(["entry is 262145 bytes; PutEvents allows 262144"]);
    expect(eb.calls.map((c) => c.entries.length)).toEqual([2, 1]);
    expect(eb.calls.every((c) => c.outcome === "ok")).toBe(true);
  });
});

describe("Kinesis sink against kinesalite", () => {
  let kin: KinesisEmulator;
  let client: KinesisClient;
  let streams = 0;
  const newStream = async (shards = 4): Promise<string> => {
    const name = `outbox-${++streams}`;
    await createStream(client, name, shards);
    kin.reset();
    return name;
  };
  const sink = (streamName: string, over: { sliceMs?: number; maxDelayMs?: number; metrics?: OutboxMetrics } = {}) =>
    createKinesisSink({ client, streamName, baseDelayMs: 1, log, ...over });

  /** Interleaves `perKey` events for each of `keys` subjects: k0#0, k1#0, ..., k0#1, k1#1, ... */
  const interleaved = (keys: number, perKey: number): EventEnvelope[] =>
    events(keys * perKey, (i) => ({ subject: `order-${i % keys}`, data: { key: i % keys, n: Math.floor(i / keys) } }));

  const idsByKey = (pairs: [string, string][]): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    for (const [k, id] of pairs) m.set(k, [...(m.get(k) ?? []), id]);
    return m;
  };
  const sentByKey = (batch: EventEnvelope[]) => idsByKey(batch.map((e) => [partitionKeyFor(e), e.id]));
  const storedByKey = async (streamName: string) => idsByKey((await readStream(client, streamName)).map((r) => [r.partitionKey, idOfData(r.data)]));

  /** Asserts every subject's records were stored exactly once each, in the order of the batch. */
  const expectPerKeyOrder = async (streamName: string, batch: EventEnvelope[]) => {
    expect(await storedByKey(streamName)).toEqual(sentByKey(batch));
  };

  const noKeyTwiceInACall = () => {
    for (const c of kin.calls) expect(new Set(c.entries.map((r) => r.partitionKey)).size).toBe(c.entries.length);
  };

  beforeAll(async () => {
    kin = await startKinesis();
    client = createKinesisClient(REGION, kin.endpoint, FAKE_CREDENTIALS);
  });
  afterAll(async () => {
    client.destroy();
    await kin.stop();
  });

  it("sends 1200 small records in calls of at most 500", async () => {
    const stream = await newStream();
    const { counts, metrics } = recordingMetrics();
    const batch = events(1200);
    const result = await run(sink(stream, { metrics }), batch);

    expect(result.rejected).toEqual([]);
    expect(kin.calls.map((c) => c.entries.length)).toEqual([500, 500, 200]);
    expect(kin.calls.every((c) => c.outcome === "ok")).toBe(true);
    expect(await readStream(client, stream)).toHaveLength(1200);
    expect(counts).toEqual({ sent: 1200, failed: 0, retried: 0 });
  });

  it("packs large records into calls of at most 5 MiB", async () => {
    const stream = await newStream();
    // ~900 KB each: five fit in 5 MiB, a sixth does not.
    const batch = events(12, () => ({ data: { blob: "x".repeat(900_000) } }));
    const result = await run(sink(stream), batch);

    expect(result.rejected).toEqual([]);
    expect(kin.calls.map((c) => c.entries.length)).toEqual([5, 5, 2]);
    for (const c of kin.calls) expect(c.bytes).toBeLessThanOrEqual(5 * 1024 * 1024);
    expect(kin.calls.every((c) => c.outcome === "ok")).toBe(true);
  });

  it("rejects a record over 1 MiB and sends the others", async () => {
    const stream = await newStream();
    const batch = [event(0), event(1, { data: { blob: "x".repeat(1_100_000) } }), event(2)];
    const result = await run(sink(stream), batch);

    expect(result.rejected.map((r) => r.event.id)).toEqual([batch[1]!.id]);
    expect(result.rejected[0]!.error).toMatch(/^record is \d+ bytes \(data \+ partition key\); Kinesis allows 1048576$/);
    expect((await readStream(client, stream)).map((r) => idOfData(r.data)).sort()).toEqual([batch[0]!.id, batch[2]!.id]);
  });

  it("sends a record of exactly 1 MiB (data + partition key), but not one byte more", async () => {
    const stream = await newStream(1);
    const sized = (i: number, bytes: number) => {
      const e = event(i, { data: { blob: "" } });
      const base = Buffer.byteLength(JSON.stringify(e)) + Buffer.byteLength(e.subject);
      return event(i, { data: { blob: "x".repeat(bytes - base) } });
    };
    const batch = [sized(0, 1_048_576), sized(1, 1_048_577)];
    const result = await run(sink(stream), batch);

    expect(result.rejected.map((r) => r.error)).toEqual(["record is 1048577 bytes (data + partition key); Kinesis allows 1048576"]);
    expect(kin.calls.map((c) => c.bytes)).toEqual([1_048_576]);
  });

  it("keys records by subject, hashing subjects longer than 256 bytes", async () => {
    const stream = await newStream(1);
    const long = "s".repeat(300);
    await run(sink(stream), [event(0, { subject: "user-1" }), event(1, { subject: long })]);

    const stored = await readStream(client, stream);
    expect(stored.map((r) => r.partitionKey)).toEqual(["user-1", new Bun.CryptoHasher("sha256").update(long).digest("hex")]);
  });

  it("keeps per-key order, never putting two records of one key in a call", async () => {
    const stream = await newStream();
    const batch = interleaved(6, 25);
    const result = await run(sink(stream), batch);

    expect(result.rejected).toEqual([]);
    expect(kin.calls).toHaveLength(25);
    noKeyTwiceInACall();
    await expectPerKeyOrder(stream, batch);
  });

  it("keeps per-key order through partial failures and throttling", async () => {
    const stream = await newStream();
    const batch = interleaved(6, 25);
    kin.throttleCalls(1);
    kin.failRecords({ where: (_r, i) => i % 3 === 1, code: "ProvisionedThroughputExceededException", calls: 8 });
    kin.failRecords({ indices: [0], code: "InternalFailure", calls: 3 });
    const { counts, metrics } = recordingMetrics();
    const result = await run(sink(stream, { sliceMs: 30_000, metrics }), batch);

    expect(result.rejected).toEqual([]);
    expect(kin.calls[0]!.outcome).toBe("throttled");
    expect(kin.calls.slice(1, 9).every((c) => c.failed.length > 0)).toBe(true);
    noKeyTwiceInACall();
    await expectPerKeyOrder(stream, batch);
    expect(counts.sent).toBe(150);
    expect(counts.failed).toBeGreaterThan(6);
  });

  it("control: the same faults reorder a key when its records share calls", async () => {
    // Proves the ordering test can fail: without firstPerKey a failed record is overtaken.
    const stream = await newStream();
    const batch = interleaved(6, 25);
    kin.failRecords({ where: (_r, i) => i % 3 === 1, code: "ProvisionedThroughputExceededException", calls: 8 });
    const pending: PendingEntry<PutRecordsRequestEntry>[] = batch.map((e) => {
      const entry = { PartitionKey: partitionKeyFor(e), Data: new TextEncoder().encode(JSON.stringify(e)) };
      return { event: e, entry, size: entry.Data.byteLength + entry.PartitionKey.length, key: entry.PartitionKey, failures: 0 };
    });
    await sendInCalls(pending, {
      sink: "control",
      operation: "PutRecords",
      limits: { maxEntries: 500, maxBytes: 5 * 1024 * 1024 },
      classify: () => "retry",
      // Every pending record is eligible: the per-key rule (firstPerKey) switched off.
      eligible: (rest) => [...rest],
      baseDelayMs: 1,
      sliceMs: 30_000,
      send: async (records) => {
        const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: records }));
        return (out.Records ?? []).map((r) => ({ errorCode: r.ErrorCode, errorMessage: r.ErrorMessage }));
      },
    });
    const want = sentByKey(batch);
    const got = await storedByKey(stream);
    // Every record arrived once, but at least one key's records are out of order.
    expect(new Map([...got].map(([k, ids]) => [k, [...ids].sort()]))).toEqual(new Map([...want].map(([k, ids]) => [k, [...ids].sort()])));
    expect(got).not.toEqual(want);
  });

  it("retries PutRecords calls throttled as a whole", async () => {
    const stream = await newStream();
    kin.throttleCalls(2);
    const result = await run(sink(stream), events(5));

    expect(result.rejected).toEqual([]);
    expect(kin.calls.map((c) => c.outcome)).toEqual(["throttled", "throttled", "ok"]);
    expect(await readStream(client, stream)).toHaveLength(5);
  });

  it("defers, never rejects, while a record keeps failing", async () => {
    const stream = await newStream();
    kin.failRecords({ indices: [0], code: "InternalFailure", calls: Infinity });
    const err = await deferral(sink(stream, { sliceMs: 150, maxDelayMs: 20 }), events(3));
    expect(err.message).toMatch(/^PutRecords stalled for .* \(transient\): InternalFailure: injected InternalFailure; 1 of 3 events waiting/);
    expect(kin.calls.length).toBeGreaterThan(2);
  });

  it("finds the record that makes a whole call invalid, dead-letters it alone and keeps its key's order", async () => {
    const stream = await newStream();
    // a0 (refused whenever it is in a call), a1, b0, c0: the first call is refused as a whole.
    const batch = events(4, (i) => ({ subject: ["order-a", "order-a", "order-b", "order-c"][i]! }));
    kin.failRecords({
      where: (r) => idOfData(r.data) === batch[0]!.id,
      code: "InvalidArgumentException",
      message: "a limit nobody checked",
      wholeCall: true,
      calls: Infinity,
    });
    const result = await run(sink(stream), batch);

    expect(result.rejected).toEqual([
      { event: batch[0]!, error: "PutRecords refused a call holding only this event: InvalidArgumentException: a limit nobody checked" },
    ]);
    expect(kin.calls[0]!.outcome).toBe("invalid");
    expect(kin.calls[0]!.entries).toHaveLength(3);
    expect(await storedByKey(stream)).toEqual(
      new Map([
        ["order-a", [batch[1]!.id]],
        ["order-b", [batch[2]!.id]],
        ["order-c", [batch[3]!.id]],
      ]),
    );
  });

  it("never dead-letters when every call is refused as invalid (a misconfiguration, not the events)", async () => {
    const stream = await newStream();
    kin.failRecords({ where: () => true, code: "ValidationException", wholeCall: true, calls: Infinity });
    const err = await deferral(sink(stream, { sliceMs: 200, maxDelayMs: 20 }), events(3));
    expect(err.message).toContain("(invalid-request): ValidationException");
    expect(kin.calls.every((c) => c.outcome === "invalid")).toBe(true);
  });
});
