import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { listDeadLetters } from "../../outbox/admin.ts";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { createKinesisClient } from "../../outbox/sinks/index.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import {
  createStream,
  type EventBridgeEmulator,
  FAKE_CREDENTIALS,
  type KinesisEmulator,
  type Outage,
  readStream,
  startEventBridge,
  startKinesis,
} from "../support/emulators.ts";
import { eventually } from "../support/eventually.ts";
import { startTestOutbox, type TestOutbox } from "../support/outbox.ts";

// Issue 13, item 10: a relay never drops or reorders an event because AWS throttles, fails or
// cannot be reached, however long that lasts; only an event AWS can never accept is dead-lettered.
// The relays run as the platform runs them (subscriptions, worker, real AWS SDK clients) against
// emulators that can fail every call or connection.
let tdb: TestDatabase;
let eb: EventBridgeEmulator;
let kin: KinesisEmulator;
let t: TestOutbox;
const metrics = createMetrics();
const STREAM = "relay-outage";
const SINKS = ["outbox.eventbridge", "outbox.kinesis"];

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
  tdb = await createTestDatabase();
  eb = startEventBridge();
  kin = await startKinesis();
  await createStream(createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS), STREAM, 2);
  t = await startTestOutbox(tdb.url, [], {
    metrics: metrics.outbox,
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
  await t?.close();
  await eb?.stop();
  await kin?.stop();
  await tdb?.drop();
});

type Sent = EventEnvelope<{ n: number; note?: string }>;

/** What each relay delivered, per key, in delivery order (EventBridge: arrival; Kinesis: sequence number). */
async function delivered(): Promise<{ eventbridge: Map<string, Sent[]>; kinesis: Map<string, Sent[]> }> {
  const group = (events: Sent[]) => {
    const m = new Map<string, Sent[]>();
    for (const e of events) m.set(e.subject, [...(m.get(e.subject) ?? []), e]);
    return m;
  };
  const records = await readStream(createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS), STREAM);
  records.sort((a, b) => (a.shardId === b.shardId ? (BigInt(a.sequenceNumber) < BigInt(b.sequenceNumber) ? -1 : 1) : a.shardId < b.shardId ? -1 : 1));
  return {
    eventbridge: group(eb.received.map((e) => JSON.parse(e.Detail) as Sent)),
    kinesis: group(records.map((r) => JSON.parse(r.data) as Sent)),
  };
}

/** metricValue reads one sample of the Prometheus text, 0 when absent. */
async function metricValue(name: string, labels: string): Promise<number> {
  const { body } = await metrics.render(t.outbox);
  const line = body.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("relays through an AWS outage", () => {
  it("delivers every event, in order per key, with no dead letter, after 30 s in which every call fails", async () => {
    // Both relays are up and have delivered before the outage.
    await t.append([t.happened(-1, "warm-up")]);
    await eventually(async () => {
      const d = await delivered();
      return d.eventbridge.has("warm-up") && d.kinesis.has("warm-up");
    }, 10_000);

    const KEYS = 8;
    const appended = new Map<string, number[]>();
    let n = 0;
    const appendTick = async () => {
      // Two transactions of four keys each, so keys interleave across transactions and batches.
      for (const half of [0, 1]) {
        const events = Array.from({ length: KEYS / 2 }, (_, i) => {
          const key = `order-${half * (KEYS / 2) + i}`;
          appended.set(key, [...(appended.get(key) ?? []), n]);
          return t.happened(n++, key);
        });
        await t.append(events);
      }
    };

    // 30 s of full outage: throttling first and longest, then 5xx, cut connections, a closed port.
    const phases: { outage: Outage; ms: number }[] = [
      { outage: "throttle", ms: 15_000 },
      { outage: "server-error", ms: 6_000 },
      { outage: "reset", ms: 4_500 },
      { outage: "refuse", ms: 4_500 },
    ];
    const seen = { failing: 0, deadLetters: 0, lagEvents: 0, lastErrors: new Set<string>(), stalledSeconds: 0, retries: new Set<string>(), resets: 0 };
    const outageStart = Date.now();
    for (const phase of phases) {
      eb.outage(phase.outage);
      kin.outage(phase.outage);
      const phaseEnd = Date.now() + phase.ms;
      while (Date.now() < phaseEnd) {
        await appendTick();
        const status = (await t.outbox.status()).filter((s) => SINKS.includes(s.name));
        seen.lagEvents = Math.max(seen.lagEvents, Math.min(...status.map((s) => s.lag.events)));
        for (const s of status) if (s.lastError) seen.lastErrors.add(`${s.name}: ${s.lastError}`);
        // An outage counts no attempt toward maxAttempts (that is what used to dead-letter).
        seen.failing += status.filter((s) => s.failing !== null).length;
        seen.deadLetters = Math.max(seen.deadLetters, (await listDeadLetters(t.database.db, { limit: 10 })).length);
        seen.stalledSeconds = Math.max(
          seen.stalledSeconds,
          Math.min(...(await Promise.all(SINKS.map((s) => metricValue("outbox_sink_stalled_seconds", `sink="${s}"`))))),
        );
        for (const s of SINKS)
          for (const kind of ["throttled", "transient", "unknown"])
            if ((await metricValue("outbox_sink_retries_total", `sink="${s}",kind="${kind}"`)) > 0) seen.retries.add(`${s}/${kind}`);
        await Bun.sleep(Math.max(0, Math.min(1_000, phaseEnd - Date.now())));
      }
    }
    seen.resets = eb.connectionsReset + kin.connectionsReset;
    eb.outage(null);
    kin.outage(null);
    const outageMs = Date.now() - outageStart;

    // Both relays catch up: nothing is left past their checkpoints.
    await eventually(async () => (await t.outbox.status()).filter((s) => SINKS.includes(s.name)).every((s) => s.lag.events === 0), 20_000);

    // No event was given up on.
    const deadLetters = await listDeadLetters(t.database.db, { limit: 10 });
    expect(deadLetters.map((d) => `${d.subscription}: ${d.error}`)).toEqual([]);
    expect(seen.deadLetters).toBe(0);
    expect(seen.failing).toBe(0);
    // Every event arrived, in order per key. At least once: a call whose answer was lost when its
    // connection was cut is sent again, so a duplicate may directly follow its original.
    const got = await delivered();
    for (const [relay, byKey] of Object.entries(got)) {
      for (const [key, ns] of appended) {
        const arrived = (byKey.get(key) ?? []).map((e) => e.data.n);
        const firsts = arrived.filter((x, i) => i === 0 || arrived[i - 1] !== x);
        expect({ relay, key, order: firsts }).toEqual({ relay, key, order: ns });
      }
    }

    // The outage was complete and of every kind, and the stall showed while it lasted.
    expect(outageMs).toBeGreaterThanOrEqual(30_000);
    expect(eb.calls.filter((c) => c.outcome === "throttled").length).toBeGreaterThan(2);
    expect(kin.calls.filter((c) => c.outcome === "throttled").length).toBeGreaterThan(2);
    expect(eb.calls.some((c) => c.outcome === "unavailable") && kin.calls.some((c) => c.outcome === "unavailable")).toBe(true);
    expect(seen.resets).toBeGreaterThan(0);
    expect(seen.lagEvents).toBeGreaterThan(KEYS * 10);
    expect(seen.stalledSeconds).toBeGreaterThan(10);
    expect([...seen.retries].sort()).toEqual(
      expect.arrayContaining(["outbox.eventbridge/throttled", "outbox.kinesis/throttled", "outbox.eventbridge/transient", "outbox.kinesis/transient"]),
    );
    expect(
      [...seen.lastErrors].some((e) => /^outbox\.eventbridge: DeliveryDeferredError: PutEvents stalled for .* \(throttled\): ThrottlingException/.test(e)),
    ).toBe(true);
    expect(
      [...seen.lastErrors].some((e) =>
        /^outbox\.kinesis: DeliveryDeferredError: PutRecords stalled for .* \(throttled\): ProvisionedThroughputExceededException/.test(e),
      ),
    ).toBe(true);

    // Once everything is delivered the stall clears and the lag drains.
    await eventually(async () => {
      const status = (await t.outbox.status()).filter((s) => SINKS.includes(s.name));
      const stalled = await Promise.all(SINKS.map((s) => metricValue("outbox_sink_stalled_seconds", `sink="${s}"`)));
      return status.every((s) => s.lag.events === 0) && stalled.every((v) => v === 0);
    }, 10_000);
  }, 90_000);

  it("dead-letters only the events AWS can never accept, and the events of their key after them arrive in order", async () => {
    eb.reset();
    const key = "poisoned";
    // k0, k1 (over 1 MiB: too large for both), k2 (fails transiently twice on each), k3 (EventBridge
    // refuses it as invalid), k4; and other keys around them.
    const events = [
      t.happened(9000, key),
      t.happened(9001, "bystander-1"),
      t.happened(9002, key, "y".repeat(1100 * 1024)),
      t.happened(9003, key),
      t.happened(9004, "bystander-2"),
      t.happened(9005, key, "refuse-me"),
      t.happened(9006, key),
    ];
    const isN = (detail: string, n: number) => (JSON.parse(detail) as Sent).data.n === n;
    let ebTransient = 0;
    let kinTransient = 0;
    eb.failEntries({ where: (e) => isN(e.Detail, 9003) && ebTransient++ < 2, code: "InternalFailure", calls: Infinity });
    eb.failEntries({ where: (e) => isN(e.Detail, 9005), code: "InvalidArgument", message: "Detail is not valid here", calls: Infinity });
    kin.failRecords({ where: (r) => isN(r.data, 9003) && kinTransient++ < 2, code: "ProvisionedThroughputExceededException", calls: Infinity });
    await t.append(events);

    const ours = (d: { event: { data: unknown } }) => (d.event.data as { n: number }).n >= 9000;
    const dls = await eventually(async () => {
      const l = (await listDeadLetters(t.database.db, { limit: 100 })).filter(ours);
      return l.length >= 3 && l;
    }, 15_000);
    const byRelay = (sub: string) =>
      dls
        .filter((d) => d.subscription === sub)
        .map((d) => (d.event.data as { n: number }).n)
        .sort();
    expect(byRelay("outbox.eventbridge")).toEqual([9002, 9005]);
    expect(byRelay("outbox.kinesis")).toEqual([9002]);
    expect(dls.find((d) => (d.event.data as { n: number }).n === 9005)!.error).toBe("PutEvents refused the event: InvalidArgument: Detail is not valid here");

    await eventually(async () => (await t.outbox.status()).filter((s) => SINKS.includes(s.name)).every((s) => s.lag.events === 0), 10_000);
    const got = await delivered();
    expect(got.eventbridge.get(key)!.map((e) => e.data.n)).toEqual([9000, 9003, 9006]);
    expect(got.kinesis.get(key)!.map((e) => e.data.n)).toEqual([9000, 9003, 9005, 9006]);
    expect(ebTransient).toBeGreaterThanOrEqual(3);
    expect(kinTransient).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it("stops at once while backing off through an outage, counting nothing against the events", async () => {
    eb.outage("throttle");
    kin.outage("throttle");
    const outageAt = Date.now();
    await t.append([t.happened(9100, "during-shutdown")]);
    await eventually(
      async () => (await t.outbox.status()).filter((s) => SINKS.includes(s.name)).every((s) => Date.parse(s.lastErrorAt ?? "") > outageAt && s.lag.events > 0),
      15_000,
    );

    const started = Date.now();
    await t.outbox.stop();
    expect(Date.now() - started).toBeLessThan(2_000);
    const status = (await t.outbox.status()).filter((s) => SINKS.includes(s.name));
    expect(status.map((s) => [s.name, s.failing, s.leaseOwner])).toEqual(SINKS.map((name) => [name, null, null]));
    for (const s of status) expect(s.lastError).toMatch(/^DeliveryDeferredError: Put(Events|Records) stalled for .* \(throttled\)/);
    expect((await listDeadLetters(t.database.db, { limit: 100 })).filter((d) => d.event.subject === "during-shutdown")).toEqual([]);
  }, 30_000);
});
