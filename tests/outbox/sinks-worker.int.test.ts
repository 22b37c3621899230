import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { listDeadLetters } from "../../outbox/admin.ts";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { createKinesisClient } from "../../outbox/sinks/index.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import {
  createStream,
  type EventBridgeEmulator,
  FAKE_CREDENTIALS,
  type KinesisEmulator,
  readStream,
  startEventBridge,
  startKinesis,
} from "../support/emulators.ts";
import { eventually } from "../support/eventually.ts";
import { startTestOutbox, type TestOutbox } from "../support/outbox.ts";

// The sinks as the platform runs them: subscriptions over the log, switched on by configuration,
// talking to emulators through the real AWS SDK clients.
let tdb: TestDatabase;
let eb: EventBridgeEmulator;
let kin: KinesisEmulator;
let t: TestOutbox;
const STREAM = "events-worker-test";

beforeAll(async () => {
  // The SDK's default credential chain reads these, as it would read a task role's in AWS.
  process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
  tdb = await createTestDatabase();
  eb = startEventBridge();
  kin = await startKinesis();
  await createStream(createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS), STREAM, 2);
  t = await startTestOutbox(tdb.url, [], {
    sinks: {
      region: "us-east-1",
      eventBridgeBusName: "app-bus",
      eventBridgeSourcePrefix: "app.",
      eventBridgeEndpoint: eb.endpoint,
      kinesisStreamName: STREAM,
      kinesisEndpoint: kin.endpoint,
    },
  });
});
afterAll(async () => {
  await t.close();
  await eb.stop();
  await kin.stop();
  await tdb.drop();
});

describe("sinks as subscriptions", () => {
  it("relays every event to EventBridge and Kinesis, respecting limits and per-subject order", async () => {
    const events = Array.from({ length: 45 }, (_, i) => t.happened(i, `agg-${i % 5}`));
    await t.append(events.slice(0, 20));
    await t.append(events.slice(20));
    await eventually(() => eb.received.length === 45, 10_000);
    expect(eb.calls.every((c) => c.entries.length <= 10 && c.bytes <= 262_144)).toBe(true);
    const first = eb.received[0]!;
    expect(first).toMatchObject({ Source: "app.testing", DetailType: "test.happened", EventBusName: "app-bus" });
    expect(JSON.parse(first.Detail)).toMatchObject({ specversion: "1.0", type: "test.happened", data: { n: 0 } });

    const client = createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS);
    const records = await eventually(async () => {
      const r = await readStream(client, STREAM);
      return r.length === 45 && r;
    }, 10_000);
    for (let s = 0; s < 5; s++) {
      const ns = records
        .filter((r) => r.partitionKey === `agg-${s}`)
        .sort((a, b) => (BigInt(a.sequenceNumber) < BigInt(b.sequenceNumber) ? -1 : 1))
        .map((r) => (JSON.parse(r.data) as EventEnvelope<{ n: number }>).data.n);
      expect(ns).toEqual(Array.from({ length: 9 }, (_, i) => s + i * 5));
    }
  });

  it("dead-letters an event too large for EventBridge while Kinesis still takes it, and one too large for both", async () => {
    eb.reset();
    const big = "x".repeat(300 * 1024);
    const huge = "y".repeat(1100 * 1024);
    await t.append([t.happened(1000, "big-one", big), t.happened(1001, "huge-one", huge), t.happened(1002, "small-one")]);
    const dls = await eventually(async () => {
      const l = await listDeadLetters(t.database.db, { limit: 10 });
      return l.length === 3 && l;
    }, 10_000);
    const by = (sub: string) => dls.filter((d) => d.subscription === sub).map((d) => [(d.event.data as { n: number }).n, d.error]);
    expect(
      by("outbox.eventbridge")
        .map(([n]) => n)
        .sort(),
    ).toEqual([1000, 1001]);
    expect(String(by("outbox.eventbridge")[0]![1])).toMatch(/bytes; PutEvents allows 262144/);
    expect(by("outbox.kinesis").map(([n]) => n)).toEqual([1001]);
    expect(String(by("outbox.kinesis")[0]![1])).toMatch(/1048576/);
    // The small event behind them was not held back.
    await eventually(() => eb.received.some((e) => e.Detail.includes('"n":1002')));
  });

  it("resends only the entries that failed, through the worker", async () => {
    eb.reset();
    eb.failEntries({ code: "InternalFailure", indices: [1, 3] });
    await t.append(Array.from({ length: 5 }, (_, i) => t.happened(2000 + i, `retry-${i}`)));
    await eventually(() => eb.received.length === 5, 10_000);
    expect(eb.calls.map((c) => c.entries.length)).toEqual([5, 2]);
    const status = await t.outbox.status();
    expect(status.find((s) => s.name === "outbox.eventbridge")!.kind).toBe("sink");
    expect(t.outbox.sinks.every((s) => s.enabled)).toBe(true);
  });
});
