import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import pino from "pino";
import { createOutbox, defineSubscription, type Outbox } from "../../outbox/index.ts";
import { createKinesisClient } from "../../outbox/sinks/index.ts";
import { connectDatabase, type Database } from "../../src/db/client.ts";
import { EventRegistry } from "../../src/events/registry.ts";
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
import { recordEffect, startTestOutbox, TestHappened, TestNoted, type TestOutbox, testEvents } from "../support/outbox.ts";

// Public events are the module's contract and leave for EventBridge and Kinesis; internal ones
// stay in the log for in-process subscriptions. Run as a MODULES split would run it: one process
// hosts the module's subscription, another hosts only the relays and learns which types are
// public from the registry (filled, as at start-up, after the outbox was made).
let tdb: TestDatabase;
let eb: EventBridgeEmulator;
let kin: KinesisEmulator;
let app: TestOutbox;
let relayDb: Database;
let relays: Outbox;
const STREAM = "events-visibility-test";

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
  tdb = await createTestDatabase();
  eb = startEventBridge();
  kin = await startKinesis();
  await createStream(createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS), STREAM, 2);

  app = await startTestOutbox(tdb.url, [
    defineSubscription({
      name: "testing.record-all",
      on: [TestHappened, TestNoted],
      handler: (event, { tx }) => recordEffect(tx, event, event.type),
    }),
  ]);

  relayDb = connectDatabase(tdb.url, { max: 4 });
  const registry = new EventRegistry();
  relays = createOutbox({
    database: relayDb,
    registry,
    log: pino({ level: "silent" }),
    pollMs: 200,
    leaseSeconds: 5,
    processId: "relay-process",
    sinks: {
      region: "us-east-1",
      eventBridgeBusName: "app-bus",
      eventBridgeSourcePrefix: "app.",
      eventBridgeEndpoint: eb.endpoint,
      kinesisStreamName: STREAM,
      kinesisEndpoint: kin.endpoint,
    },
  });
  registry.register(...testEvents);
  await relays.start();
});
afterAll(async () => {
  await relays.stop();
  await relayDb.close(2);
  await app.close();
  await eb.stop();
  await kin.stop();
  await tdb.drop();
});

describe("public and internal events", () => {
  it("relays a public event to EventBridge and Kinesis, and keeps an internal one for the in-process subscription", async () => {
    const subject = "agg-visibility";
    // Log order: public, internal, public, all on one subject. A relay reads in log order and
    // keeps per-subject order, so once the last public event is through, the internal one
    // would have gone before it if the relay took it at all.
    await app.append([TestHappened.with({ n: 1 }, { subject })]);
    await app.append([TestNoted.with({ n: 2 }, { subject })]);
    await app.append([TestHappened.with({ n: 3 }, { subject }), TestNoted.with({ n: 4 }, { subject })]);
    await app.append([TestHappened.with({ n: 5 }, { subject })]);
    const [last] = await app.database.sql<{ position: string }[]>`select max(position)::text as position from outbox.events`;

    // The in-process subscription gets all five, internal ones included.
    const effects = await eventually(async () => {
      const rows = await app.effects();
      return rows.length === 5 && rows;
    }, 10_000);
    expect(effects.map((r) => [r.n, r.worker])).toEqual([
      [1, "test.happened"],
      [2, "test.noted"],
      [3, "test.happened"],
      [4, "test.noted"],
      [5, "test.happened"],
    ]);

    // Both relays have read past the last event...
    await eventually(async () => {
      const rows = await relayDb.sql<{ name: string; position: string }[]>`
        select name, last_position::text as position from outbox.subscriptions where name in ('outbox.eventbridge', 'outbox.kinesis')`;
      return rows.length === 2 && rows.every((r) => BigInt(r.position) >= BigInt(last!.position));
    }, 10_000);

    // ...and carried exactly the public events.
    const detail = (text: string) => JSON.parse(text) as { type: string; data: { n: number } };
    expect(eb.received.map((e) => [e.DetailType, detail(e.Detail).data.n])).toEqual([
      ["test.happened", 1],
      ["test.happened", 3],
      ["test.happened", 5],
    ]);
    const records = await readStream(createKinesisClient("us-east-1", kin.endpoint, FAKE_CREDENTIALS), STREAM);
    expect(records.map((r) => detail(r.data)).map((e) => [e.type, e.data.n])).toEqual([
      ["test.happened", 1],
      ["test.happened", 3],
      ["test.happened", 5],
    ]);

    // The internal events are in the log (the archive), and the relays never saw them.
    const stored = await app.database.sql<{ type: string; n: number }[]>`select type, (data->>'n')::int as n from outbox.events order by position`;
    expect(stored.filter((e) => e.type === "test.noted").map((e) => e.n)).toEqual([2, 4]);
    const [dead] = await app.database.sql<{ count: number }[]>`select count(*)::int as count from outbox.dead_letters`;
    expect(dead!.count).toBe(0);
  });

  it("lists the relays as subscribers of the public types only", async () => {
    const types = Object.fromEntries(relays.subscriptions().map((s) => [s.name, s.matcher.types]));
    expect(types).toEqual({
      "outbox.eventbridge": ["test.concluded", "test.followed", "test.happened"],
      "outbox.kinesis": ["test.concluded", "test.followed", "test.happened"],
    });
  });
});
