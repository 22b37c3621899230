/**
 * Event-sourcing benchmark: our handleCommand beside Emmett's in the same run, on the same
 * server, with the same decider; then the time to load a 500-event stream with and without a
 * snapshot. Printed as a table and written to bench/results/event-sourcing-*.json.
 *
 *   command  handleCommand on existing streams: 8 writers, each on its own streams (no
 *            conflicts), one deposit per command, tx/s; ours vs Emmett 0.42 DeciderCommandHandler
 *            on its PostgreSQL event store. Target: at least 1.5 times Emmett.
 *   load     P50/P95 of loading the state of a 500-event stream, one reader: ours with its
 *            snapshot (25 events behind, half the default interval of 50), ours replaying all
 *            500, and Emmett's aggregateStream of the same 500 events.
 *
 * Run with `bun run bench event-sourcing` or `bun bench/event-sourcing.ts`. Environment:
 *   DATABASE_URL    server to use (loopback only); bench_<timestamp>_<pid>[_peer] databases are
 *                   created and dropped
 *   BENCH_SECONDS   length of a measured phase (default 6)
 *   BENCH_ONLY      comma list of phases: command,load (or event-sourcing for both)
 *   BENCH_STRICT=1  exit 2 when a target is missed
 */
import { DeciderCommandHandler } from "@event-driven-io/emmett";
import { getPostgreSQLEventStore } from "@event-driven-io/emmett-postgresql";
import pino from "pino";
import postgres from "postgres";
import { z } from "zod";
import { type EventSourced, eventSourced, handleCommand, loadState } from "../outbox/event-sourcing/index.ts";
import { createOutbox } from "../outbox/index.ts";
import { connectDatabase, type Database } from "../src/db/client.ts";
import { assertNever, type Decider } from "../src/events/decider.ts";
import { defineEvent } from "../src/events/definition.ts";
import { EventRegistry } from "../src/events/registry.ts";
import {
  type BenchDatabase,
  baseUrl,
  combine,
  createBenchDatabase,
  dropBenchDatabases,
  type Figure,
  figure,
  formatTable,
  INFO,
  log,
  nowMs,
  percentile,
  phaseSeconds,
  runLoop,
  runMeta,
  selectedPhases,
  writeResults,
} from "./support.ts";

const T = phaseSeconds();
const PHASES = selectedPhases("event-sourcing", ["command", "load"]);
const WRITERS = 8;
/** Pool size of both sides (Emmett's pg pool defaults to 10 too). */
const POOL = 10;
/** Streams per writer in the command phase, and the events each starts with. */
const STREAMS_PER_WRITER = 128;
const SEED_EVENTS = 10;
const LOAD_STREAMS = 20;
const LOAD_EVENTS = 500;
/** Events past the snapshot in the load phase: half the default interval, the average tail. */
const LOAD_TAIL = 25;
/** No load phase takes more samples than this per side. */
const LOAD_MAX_SAMPLES = 5_000;

// The same decider runs on both sides. Commands and events are `{type, data}`, which both
// runtimes accept.
type Command = { type: "open"; data: { owner: string } } | { type: "deposit"; data: { amount: number } };
type Event = { type: "account.opened"; data: { owner: string } } | { type: "account.deposited"; data: { amount: number } };
interface State {
  open: boolean;
  balance: number;
  deposits: number;
}

const account: Decider<State, Command, Event> = {
  initialState: () => ({ open: false, balance: 0, deposits: 0 }),
  evolve(state, event) {
    switch (event.type) {
      case "account.opened":
        return { ...state, open: true };
      case "account.deposited":
        return { ...state, balance: state.balance + event.data.amount, deposits: state.deposits + 1 };
      default:
        return assertNever(event);
    }
  },
  decide(command, state) {
    switch (command.type) {
      case "open":
        if (state.open) throw new Error("already open");
        return [{ type: "account.opened", data: command.data }];
      case "deposit":
        if (!state.open) throw new Error("not open");
        return [{ type: "account.deposited", data: command.data }];
      default:
        return assertNever(command);
    }
  },
};

const AccountOpened = defineEvent({
  source: "bench",
  type: "account.opened",
  visibility: "internal",
  description: "Benchmark account opened",
  schema: z.object({ owner: z.string() }),
});
const AccountDeposited = defineEvent({
  source: "bench",
  type: "account.deposited",
  visibility: "internal",
  description: "Benchmark deposit",
  schema: z.object({ amount: z.number().int() }),
});
const accountEvents = [AccountOpened, AccountDeposited];
const registry = new EventRegistry().register(AccountOpened, AccountDeposited);

const seedEvents = (n: number): Event[] => [
  { type: "account.opened", data: { owner: "bench" } },
  ...Array.from({ length: n - 1 }, (_, i) => ({ type: "account.deposited" as const, data: { amount: i + 1 } })),
];
const deposit: Command = { type: "deposit", data: { amount: 1 } };

interface Ours {
  database: Database;
  accounts: EventSourced<State, Command, Event>;
  /** Same streams, snapshots off: every load replays the whole stream. */
  replaying: EventSourced<State, Command, Event>;
  close(): Promise<void>;
}

function ours(bench: BenchDatabase): Ours {
  const database = connectDatabase(bench.url, { max: POOL, applicationName: "bench-ours" });
  const outbox = createOutbox({ database, registry, log: pino({ level: "silent" }) });
  const bind = (snapshotEvery?: number) =>
    eventSourced({
      name: "account",
      decider: account,
      events: accountEvents,
      db: database.db,
      outbox: outbox.appender,
      ...(snapshotEvery === undefined ? {} : { snapshotEvery }),
    });
  return { database, accounts: bind(), replaying: bind(0), close: () => database.close() };
}

/** Emmett's handleCommand with the same decider (its Command and Event types are `{type, data}` too). */
function emmett(url: string) {
  const store = getPostgreSQLEventStore(url);
  const handle = DeciderCommandHandler<State, Command, Event>({
    decide: account.decide as (c: Command, s: State) => Event[],
    evolve: account.evolve,
    initialState: account.initialState,
  });
  return { store, handle };
}

/** appendSeed writes `events` to a stream of ours through appendToStream (no snapshot). */
const appendSeed = (o: Ours, streamId: string, version: number, events: Event[]) =>
  o.database.db.transaction((tx) =>
    o.accounts.outbox.appendToStream(
      tx,
      streamId,
      version,
      events.map((e) =>
        e.type === "account.opened" ? AccountOpened.with(e.data, { subject: streamId }) : AccountDeposited.with(e.data, { subject: streamId }),
      ),
    ),
  );

// ---------------------------------------------------------------------------------------------
// handleCommand on existing streams

async function commandPhase(bench: BenchDatabase): Promise<Figure[]> {
  const streams = Array.from({ length: WRITERS }, () => Array.from({ length: STREAMS_PER_WRITER }, () => crypto.randomUUID()));
  const all = streams.flat();
  log(`command: ${WRITERS} writers, ${all.length} streams of ${SEED_EVENTS} events each side, one deposit per command, ${T}s per side`);
  const o = ours(bench);
  const emmettDb = await createBenchDatabase({ suffix: "emmett", migrate: false });
  const e = emmett(emmettDb.url);
  try {
    await runLoop({ seconds: 120, concurrency: WRITERS, maxOps: all.length }, (i) => appendSeed(o, o.accounts.streamId(all[i]!), 0, seedEvents(SEED_EVENTS)));
    await runLoop({ seconds: 120, concurrency: WRITERS, maxOps: all.length }, (i) => e.store.appendToStream(`account-${all[i]!}`, seedEvents(SEED_EVENTS)));

    // Each writer cycles through its own streams, so no two commands race on one stream.
    const cursor = new Array(WRITERS).fill(0);
    const next = (w: number) => streams[w]![cursor[w]++ % STREAMS_PER_WRITER]!;
    const oursOp = (_: number, w: number) => handleCommand(o.accounts, next(w), deposit);
    const emmettOp = (_: number, w: number) => e.handle(e.store, `account-${next(w)}`, deposit);

    await runLoop({ seconds: 0.5, concurrency: WRITERS }, emmettOp); // warm-up: connections, statements, JIT
    await runLoop({ seconds: 0.5, concurrency: WRITERS }, oursOp);
    // Symmetric order (A B B A): both sides' streams grow as they run, so neither always runs on the longer ones.
    const e1 = await runLoop({ seconds: T / 2, concurrency: WRITERS }, emmettOp);
    const o1 = await runLoop({ seconds: T / 2, concurrency: WRITERS }, oursOp);
    const o2 = await runLoop({ seconds: T / 2, concurrency: WRITERS }, oursOp);
    const e2 = await runLoop({ seconds: T / 2, concurrency: WRITERS }, emmettOp);
    const oursRate = combine(o1, o2);
    const emmettRate = combine(e1, e2);

    const [oLen] = await o.database.sql<{ n: number }[]>`select count(*)::float / ${all.length} as n from outbox.events where stream_id is not null`;
    const emmettSql = postgres(emmettDb.url, { max: 1, onnotice: () => {} });
    const [eLen] = await emmettSql<{ n: number }[]>`select count(*)::float / ${all.length} as n from emt_messages`.finally(() => emmettSql.end({ timeout: 2 }));
    log(
      `   ours ${oursRate.rate.toFixed(0)} commands/s, Emmett ${emmettRate.rate.toFixed(0)} commands/s; streams ended at ${oLen!.n.toFixed(1)} (ours) and ${eLen!.n.toFixed(1)} (Emmett) events on average`,
    );
    return [
      figure({
        name: `handleCommand on an existing stream (${WRITERS} writers, distinct streams)`,
        value: oursRate.rate,
        unit: "commands/s",
        reference: `Emmett 0.42 DeciderCommandHandler, PostgreSQL event store, ${WRITERS} writers`,
        referenceValue: emmettRate.rate,
        target: { ratioAtLeast: 1.5 },
        note: `${all.length} streams per side, seeded with ${SEED_EVENTS} events; at the end ours averaged ${oLen!.n.toFixed(1)} events per stream, Emmett's ${eLen!.n.toFixed(1)}`,
      }),
    ];
  } finally {
    await o.close();
    await e.store.close().catch(() => {});
    await emmettDb.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// Loading a 500-event stream

/** sampleLoads times `load` over the streams, one at a time, for `seconds` or LOAD_MAX_SAMPLES; returns milliseconds. */
async function sampleLoads(ids: readonly string[], seconds: number, load: (id: string) => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  const deadline = nowMs() + seconds * 1000;
  for (let i = 0; nowMs() < deadline && samples.length < LOAD_MAX_SAMPLES; i++) {
    const t0 = nowMs();
    await load(ids[i % ids.length]!);
    samples.push(nowMs() - t0);
  }
  return samples;
}

async function loadPhase(bench: BenchDatabase): Promise<Figure[]> {
  log(`load: ${LOAD_STREAMS} streams of ${LOAD_EVENTS} events, one reader, ${T / 2}s per case`);
  const o = ours(bench);
  const emmettDb = await createBenchDatabase({ suffix: "emmett_load", migrate: false });
  const e = emmett(emmettDb.url);
  const ids = Array.from({ length: LOAD_STREAMS }, () => crypto.randomUUID());
  try {
    const events = seedEvents(LOAD_EVENTS);
    const before = LOAD_EVENTS - LOAD_TAIL;
    for (const id of ids) {
      const streamId = o.accounts.streamId(id);
      // Up to the snapshot's version through handleCommand (which takes the snapshot there), then
      // the tail appended beside it, as later commands would have left it.
      await appendSeed(o, streamId, 0, events.slice(0, before - 1));
      await handleCommand(o.accounts, id, deposit);
      await appendSeed(o, streamId, before, events.slice(before));
      await e.store.appendToStream(`account-${id}`, events);
    }
    const streamIds = ids.map((id) => o.accounts.streamId(id));
    const [snap] = await o.database.sql<{ n: number; lo: number; hi: number }[]>`
      select count(*)::int as n, min(version)::int as lo, max(version)::int as hi from outbox.snapshots where stream_id = any(${streamIds})`;
    if (snap?.n !== LOAD_STREAMS || snap.lo !== before || snap.hi !== before)
      throw new Error(`expected ${LOAD_STREAMS} snapshots at version ${before}, found ${JSON.stringify(snap)}`);
    const check = await loadState(o.accounts, ids[0]!);
    const replayed = await loadState(o.replaying, ids[0]!);
    if (check.version !== LOAD_EVENTS || JSON.stringify(check) !== JSON.stringify(replayed)) throw new Error("snapshot plus tail differs from the replay");

    const withSnapshot = (id: string) => loadState(o.accounts, id);
    const replay = (id: string) => loadState(o.replaying, id);
    const emmettLoad = (id: string) => e.store.aggregateStream(`account-${id}`, { evolve: account.evolve, initialState: account.initialState });
    for (const f of [withSnapshot, replay, emmettLoad]) await sampleLoads(ids, 0.5, f); // warm-up
    const s = T / 2;
    const [a1, b1, c1] = [await sampleLoads(ids, s / 2, withSnapshot), await sampleLoads(ids, s / 2, replay), await sampleLoads(ids, s / 2, emmettLoad)];
    const [c2, b2, a2] = [await sampleLoads(ids, s / 2, emmettLoad), await sampleLoads(ids, s / 2, replay), await sampleLoads(ids, s / 2, withSnapshot)];
    const snapMs = [...a1, ...a2];
    const replayMs = [...b1, ...b2];
    const emmettMs = [...c1, ...c2];
    const p = (xs: number[], q: number) => percentile(xs, q);
    log(
      `   P50/P95 ms: with snapshot ${p(snapMs, 50).toFixed(2)}/${p(snapMs, 95).toFixed(2)}, replay ${p(replayMs, 50).toFixed(2)}/${p(replayMs, 95).toFixed(2)}, Emmett ${p(emmettMs, 50).toFixed(2)}/${p(emmettMs, 95).toFixed(2)} (${snapMs.length}/${replayMs.length}/${emmettMs.length} samples)`,
    );
    return [
      figure({
        name: `load a ${LOAD_EVENTS}-event stream with its snapshot (${LOAD_TAIL}-event tail), P95`,
        value: p(snapMs, 95),
        unit: "ms",
        reference: `ours without snapshots (replays all ${LOAD_EVENTS}), P95`,
        referenceValue: p(replayMs, 95),
        target: {},
        note: `P50 ${p(snapMs, 50).toFixed(2)} ms with the snapshot, ${p(replayMs, 50).toFixed(2)} ms without; one reader, ${snapMs.length} and ${replayMs.length} samples`,
      }),
      figure({
        name: `load a ${LOAD_EVENTS}-event stream without snapshots (full replay), P95`,
        value: p(replayMs, 95),
        unit: "ms",
        reference: `Emmett 0.42 aggregateStream of the same ${LOAD_EVENTS} events, P95`,
        referenceValue: p(emmettMs, 95),
        target: {},
        note: `Emmett P50 ${p(emmettMs, 50).toFixed(2)} ms; ${emmettMs.length} samples`,
      }),
    ];
  } finally {
    await o.close();
    await e.store.close().catch(() => {});
    await emmettDb.drop();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (PHASES.length === 0) {
    log("event-sourcing benchmark: no phase selected by BENCH_ONLY; skipped");
    return 0;
  }
  const started = nowMs();
  const admin = postgres(baseUrl(), { max: 1, onnotice: () => {} });
  try {
    const meta = await runMeta("event-sourcing", admin);
    log(`event-sourcing benchmark on ${meta.pgVersion?.split(",")[0]}, ${meta.cpuCount} CPUs, ${T}s per phase`);
    const bench = await createBenchDatabase();
    const figures: Figure[] = [];
    if (PHASES.includes("command")) figures.push(...(await commandPhase(bench)));
    if (PHASES.includes("load")) figures.push(...(await loadPhase(bench)));
    console.log(
      `\nevent-sourcing benchmark: ${meta.date}, commit ${meta.gitCommit?.slice(0, 12) ?? "?"}${meta.gitDirty ? " (dirty)" : ""}, ${meta.cpuCount} CPUs, ${meta.pgVersion?.split(" on ")[0]}, BENCH_SECONDS=${T}\n`,
    );
    console.log(formatTable(figures));
    const path = writeResults(meta, figures, { totalSeconds: Math.round((nowMs() - started) / 100) / 10 });
    const targeted = figures.filter((f) => f.target !== INFO);
    const missed = targeted.filter((f) => !f.pass).length;
    console.log(`\n${targeted.length - missed}/${targeted.length} targets met; results in ${path} and bench/results/event-sourcing-latest.json`);
    return missed && process.env.BENCH_STRICT === "1" ? 2 : 0;
  } finally {
    await admin.end({ timeout: 2 });
    await dropBenchDatabases();
  }
}

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: dropping bench databases`);
    void dropBenchDatabases().finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(err);
    await dropBenchDatabases();
    process.exit(1);
  },
);
