import { afterAll, afterEach, beforeAll } from "bun:test";
import { sql } from "drizzle-orm";
import pino from "pino";
import postgres from "postgres";
import { z } from "zod";
import type { EventEnvelope } from "../../outbox/envelope.ts";
import { createOutbox, type Outbox, type OutboxMetrics, type SinkConfig, type SubscriptionDefinition } from "../../outbox/index.ts";
import { connectDatabase, type Database, type Tx } from "../../src/db/client.ts";
import { defineEvent, type NewEvent } from "../../src/events/definition.ts";
import { EventRegistry } from "../../src/events/registry.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

const counted = z.object({ n: z.number().int() });

/** TestHappened is what most tests append; public, so the relays carry it. */
export const TestHappened = defineEvent({
  source: "testing",
  type: "test.happened",
  visibility: "public",
  description: "A test event",
  schema: z.object({ n: z.number().int(), note: z.string().optional() }),
});
/** TestFollowed is caused by test.happened in causation-chain tests. */
export const TestFollowed = defineEvent({
  source: "testing",
  type: "test.followed",
  visibility: "public",
  description: "Caused by test.happened",
  schema: counted,
});
/** TestConcluded is caused by test.followed in causation-chain tests. */
export const TestConcluded = defineEvent({
  source: "testing",
  type: "test.concluded",
  visibility: "public",
  description: "Caused by test.followed",
  schema: counted,
});
/** TestNoted is internal: it stays in the log for in-process subscriptions and never reaches the relays. */
export const TestNoted = defineEvent({ source: "testing", type: "test.noted", visibility: "internal", description: "An internal test event", schema: counted });
export const testEvents = [TestHappened, TestFollowed, TestConcluded, TestNoted];

/**
 * EFFECTS_DDL is a table handlers write to, so tests can count effects. `at` and `tx` say when
 * and in which transaction each effect was written, so tests can tell deliveries apart in time.
 */
export const EFFECTS_DDL = `
  create table if not exists public.effects (
    seq bigserial primary key, event_id uuid not null, subject text not null, n int not null, worker text not null default '',
    at timestamptz not null default clock_timestamp(), tx xid8 not null default pg_current_xact_id())`;

export interface TestOutbox {
  outbox: Outbox;
  database: Database;
  append(events: NewEvent[]): Promise<void>;
  happened(n: number, subject?: string, note?: string): NewEvent<typeof TestHappened>;
  effects(): Promise<{ event_id: string; subject: string; n: number; worker: string; seq: string }[]>;
  /** Stops the outbox and closes its pool (once, however often called). */
  close(): Promise<void>;
}

/** startTestOutbox runs the outbox with test subscriptions on `url`. */
export async function startTestOutbox(
  url: string,
  subscriptions: SubscriptionDefinition[],
  opts: { pollMs?: number; leaseSeconds?: number; processId?: string; batchSize?: number; start?: boolean; sinks?: SinkConfig; metrics?: OutboxMetrics } = {},
): Promise<TestOutbox> {
  const database = connectDatabase(url, { max: 6 });
  await database.sql.unsafe(EFFECTS_DDL);
  const registry = new EventRegistry().register(...testEvents);
  const outbox = createOutbox({
    database,
    registry,
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    pollMs: opts.pollMs ?? 200,
    leaseSeconds: opts.leaseSeconds ?? 5,
    batchSize: opts.batchSize ?? 100,
    ...(opts.processId ? { processId: opts.processId } : {}),
    ...(opts.sinks ? { sinks: opts.sinks } : {}),
    metrics: opts.metrics,
  });
  outbox.subscribe(subscriptions);
  if (opts.start !== false) await outbox.start();
  let closing: Promise<void> | undefined;
  return {
    outbox,
    database,
    async append(events) {
      await database.db.transaction((tx) => outbox.appender.append(tx, events));
    },
    happened: (n, subject = `s-${n}`, note) => TestHappened.with(note ? { n, note } : { n }, { subject }),
    effects: () => database.sql`select seq::text, event_id::text, subject, n, worker from public.effects order by effects.seq` as never,
    close() {
      closing ??= (async () => {
        await outbox.stop();
        await database.close(2);
      })();
      return closing;
    },
  };
}

/** recordEffect is a handler body: one row per event, in the handler's transaction. */
export async function recordEffect(tx: Tx, event: EventEnvelope<{ n: number }>, worker = ""): Promise<void> {
  const n = event.data.n;
  await tx.execute(sql`insert into public.effects (event_id, subject, n, worker) values (${event.id}::uuid, ${event.subject}, ${n}, ${worker})`);
}

/** resetOutbox empties the log, checkpoints, dead letters and effects between the tests of one file. */
export async function resetOutbox(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`truncate outbox.events, outbox.subscriptions, outbox.subscription_members, outbox.dead_letters restart identity`;
    await sql`drop table if exists public.effects`;
    await sql.unsafe(EFFECTS_DDL);
  } finally {
    await sql.end();
  }
}

/** OutboxTestFile is a test file's database, with the outboxes its tests start on it. */
export interface OutboxTestFile {
  readonly url: string;
  /** start runs an outbox on the file's database (as `startTestOutbox`); it is closed after the test. */
  start(subscriptions: SubscriptionDefinition[], opts?: Parameters<typeof startTestOutbox>[2]): Promise<TestOutbox>;
}

/**
 * outboxTestFile sets up a test file whose tests each run their own outboxes: one database for
 * the file, and after each test every outbox it started closed and the log, checkpoints, dead
 * letters and effects emptied (`resetOutbox`).
 *
 * @example const tdb = outboxTestFile(); ... current = await tdb.start([defineSubscription(...)]);
 */
export function outboxTestFile(): OutboxTestFile {
  let db: TestDatabase | undefined;
  const started: TestOutbox[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    for (const t of started.splice(0)) await t.close();
    await resetOutbox(db!.url);
  });
  afterAll(() => db?.drop());
  return {
    get url() {
      return db!.url;
    },
    async start(subscriptions, opts) {
      const t = await startTestOutbox(db!.url, subscriptions, opts);
      started.push(t);
      return t;
    },
  };
}
