import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sql } from "drizzle-orm";
import pino from "pino";
import postgres from "postgres";
import {
  type EventSourcedOptions,
  eventSourced,
  handleCommand,
  loadState,
  loadStreams,
  stateAtTime,
  stateAtVersion,
  streamHistory,
} from "../../outbox/event-sourcing/index.ts";
import { createOutbox, runWithEventContext, StreamVersionConflictError } from "../../outbox/index.ts";
import { connectDatabase, type Database } from "../../src/db/client.ts";
import { type Decider, fold } from "../../src/events/decider.ts";
import { EventRegistry } from "../../src/events/registry.ts";
import { createHttpApp } from "../../src/http/app.ts";
import type { IdempotencyStore } from "../../src/http/env.ts";
import { createMemoryRateLimiter } from "../../src/http/rate-limit.ts";
import {
  type AccountCommand,
  type AccountEvent,
  type AccountState,
  bankAccount,
  bankingEvents,
  deposited,
  InsufficientFundsError,
  opened,
  withdrawn,
} from "../support/bank-account.ts";
import { countingProxy } from "../support/counting-proxy.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { expectProblem } from "../support/http.ts";

let tdb: TestDatabase;
let database: Database;
let raw: postgres.Sql;
let outbox: ReturnType<typeof createOutbox>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  database = connectDatabase(tdb.url, { max: 6 });
  raw = postgres(tdb.url, { max: 4, onnotice: () => {} });
  outbox = createOutbox({ database, registry: new EventRegistry().register(...bankingEvents), log: pino({ level: "silent" }) });
});
afterAll(async () => {
  await outbox.stop();
  await raw.end({ timeout: 2 });
  await database.close(2);
  await tdb.drop();
});

type Opts = Partial<EventSourcedOptions<AccountState, AccountCommand, AccountEvent>>;
const accountsWith = (over: Opts = {}) =>
  eventSourced({ name: "account", decider: bankAccount, events: bankingEvents, db: database.db, outbox: outbox.appender, ...over });

/** counting wraps a decider so a test can tell how many times `decide` ran (each retry decides again). */
function counting(decider: Decider<AccountState, AccountCommand, AccountEvent>) {
  const calls = { n: 0 };
  return {
    calls,
    decider: {
      ...decider,
      decide: (c: AccountCommand, s: AccountState) => {
        calls.n++;
        return decider.decide(c, s);
      },
    },
  };
}

const newId = () => crypto.randomUUID();
/** A command on a new stream in its own transaction: BEGIN, the insert and COMMIT go together. */
const NEW_STREAM_TRIPS = 1;

async function openWith(es: ReturnType<typeof accountsWith>, id: string, ...commands: AccountCommand[]) {
  await handleCommand(es, id, { type: "open", owner: "ada", overdraftLimit: 0 });
  for (const c of commands) await handleCommand(es, id, c);
}

const streamRows = (streamId: string) =>
  raw<{ stream_version: number; type: string; subject: string; data: unknown }[]>`
    select stream_version, type, subject, data from outbox.events where stream_id = ${streamId} order by stream_version`;
const snapshotRow = async (streamId: string) =>
  (
    await raw<{ version: number; decider: string; evolve_version: number; state: AccountState }[]>`
    select version, decider, evolve_version, state from outbox.snapshots where stream_id = ${streamId}`
  )[0];

/**
 * holdVersion inserts an event at `version` of a stream in a transaction it keeps open: writers
 * that read the stream before it commits and then append at that version wait on it, and
 * conflict when it commits. That makes a concurrent writer deterministic.
 */
async function holdVersion(streamId: string, version: number, event: AccountEvent) {
  const conn = await raw.reserve();
  await conn`begin`;
  await conn`insert into outbox.events (id, source, type, subject, time, data, correlation_id, stream_id, stream_version)
             values (${Bun.randomUUIDv7()}, 'banking', ${event.type}, ${streamId}, now(), ${conn.json(event.data as never)}, 'held', ${streamId}, ${version})`;
  const end = async (how: "commit" | "rollback") => {
    await conn.unsafe(how);
    conn.release();
  };
  return { commit: () => end("commit"), rollback: () => end("rollback") };
}

/** lockWaiters resolves once `n` sessions of this database wait on a lock (a writer blocked on a held version). */
const lockWaiters = (n: number) =>
  eventually(async () => {
    const [r] = await raw<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
    return r!.n >= n;
  }, 10_000);

describe("handleCommand", () => {
  it("appends the decided events at the next versions, with the aggregate id as subject, and returns the new state", async () => {
    const accounts = accountsWith();
    const id = newId();
    const first = await handleCommand(accounts, id, { type: "open", owner: "ada", overdraftLimit: 5 });
    expect(first).toMatchObject({ version: 1, streamId: `account-${id}`, events: [opened("ada", 5)] });
    const second = await handleCommand(accounts, id, { type: "depositMany", amounts: [10, 20] });
    expect(second.version).toBe(3);
    expect(second.events).toEqual([deposited(10), deposited(20)]);
    expect(second.state).toEqual({ status: "open", owner: "ada", balance: 30, overdraftLimit: 5, movements: 2 });
    expect(second.envelopes.map((e) => [e.type, e.subject, e.source])).toEqual([
      ["account.deposited", id, "banking"],
      ["account.deposited", id, "banking"],
    ]);
    expect([...(await streamRows(`account-${id}`))]).toEqual([
      { stream_version: 1, type: "account.opened", subject: id, data: { owner: "ada", overdraftLimit: 5 } },
      { stream_version: 2, type: "account.deposited", subject: id, data: { amount: 10 } },
      { stream_version: 3, type: "account.deposited", subject: id, data: { amount: 20 } },
    ]);
    expect(await loadState(accounts, id)).toEqual({ state: second.state, version: 3 });
  });

  it("writes nothing when the decision is to do nothing", async () => {
    const accounts = accountsWith();
    const id = newId();
    await openWith(accounts, id);
    const r = await handleCommand(accounts, id, { type: "depositMany", amounts: [] });
    expect(r).toMatchObject({ version: 1, events: [], envelopes: [] });
    expect(await streamRows(`account-${id}`)).toHaveLength(1);
  });

  it("lets a domain error from decide through and writes nothing", async () => {
    const accounts = accountsWith();
    const id = newId();
    await openWith(accounts, id, { type: "deposit", amount: 3 });
    const err = await handleCommand(accounts, id, { type: "withdraw", amount: 4 }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientFundsError);
    expect(await streamRows(`account-${id}`)).toHaveLength(2);
  });

  it("commits and rolls back with the caller's transaction", async () => {
    const accounts = accountsWith({ snapshotEvery: 1 });
    const id = newId();
    await raw`create table if not exists public.audit (note text)`;
    await database.db.transaction(async (tx) => {
      await handleCommand(accounts, id, { type: "open", owner: "ada" }, { tx });
      await handleCommand(accounts, id, { type: "deposit", amount: 7 }, { tx }); // sees the first one's events
      await tx.execute(sql`insert into public.audit values (${id})`);
    });
    expect((await loadState(accounts, id)).state.balance).toBe(7);
    await expect(
      database.db.transaction(async (tx) => {
        await handleCommand(accounts, id, { type: "deposit", amount: 1 }, { tx });
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await loadState(accounts, id)).toMatchObject({ version: 2, state: { balance: 7 } });
    expect((await snapshotRow(`account-${id}`))?.version).toBe(2); // the rolled-back snapshot at 3 went too
  });

  it("stamps the events with the ambient correlation and actor", async () => {
    const accounts = accountsWith();
    const id = newId();
    const r = await runWithEventContext({ correlationId: "corr-es", actorId: "user-1" }, () => handleCommand(accounts, id, { type: "open", owner: "ada" }));
    expect(r.envelopes[0]).toMatchObject({ correlationid: "corr-es", actorid: "user-1" });
  });
});

describe("round trips", () => {
  it("costs two round trips for a command on an existing stream, snapshot included, and one for a load", async () => {
    const proxy = await countingProxy(tdb.url);
    const via = connectDatabase(proxy.url, { max: 1 });
    try {
      const accounts = eventSourced({ name: "account", decider: bankAccount, events: bankingEvents, db: via.db, outbox: outbox.appender, snapshotEvery: 3 });
      const id = newId();
      // Connects, and prepares each statement on the connection (a first use costs a round trip more).
      await openWith(accounts, id, ...Array.from({ length: 4 }, () => ({ type: "deposit" as const, amount: 1 }))); // version 5, snapshot at 3
      await loadState(accounts, id);
      const trips = async (f: () => Promise<unknown>) => {
        proxy.flushes = 0;
        await f();
        return proxy.flushes;
      };
      expect(await trips(() => handleCommand(accounts, id, { type: "deposit", amount: 1 }))).toBe(2); // BEGIN + read; insert + snapshot + COMMIT
      expect((await snapshotRow(`account-${id}`))?.version).toBe(6);
      expect(await trips(() => handleCommand(accounts, id, { type: "deposit", amount: 1 }))).toBe(2); // BEGIN + read; insert + COMMIT
      expect(await trips(() => loadState(accounts, id))).toBe(1);
      expect(await loadState(accounts, id)).toMatchObject({ version: 7, state: { balance: 6 } });
    } finally {
      await via.close(2);
      proxy.close();
    }
  });
});

describe("handleCommand on a new stream", () => {
  it("skips the read (one round trip in its own transaction) and still appends at version 1", async () => {
    const proxy = await countingProxy(tdb.url);
    const via = connectDatabase(proxy.url, { max: 1 });
    try {
      const accounts = accountsWith({ db: via.db });
      await openWith(accounts, newId()); // connects and prepares
      const id = newId();
      proxy.flushes = 0;
      const r = await handleCommand(accounts, id, { type: "open", owner: "ada", overdraftLimit: 0 }, { newStream: true });
      expect(proxy.flushes).toBe(NEW_STREAM_TRIPS);
      expect(r.version).toBe(1);
      expect(await loadState(accounts, id)).toMatchObject({ version: 1, state: { owner: "ada" } });
    } finally {
      await via.close(2);
      proxy.close();
    }
  });

  it("treats a stream that existed after all as a conflict: its own transaction re-reads and decides again, the caller's throws", async () => {
    const { calls, decider } = counting(bankAccount);
    const accounts = accountsWith({ decider });
    const id = newId();
    await openWith(accounts, id);
    calls.n = 0;
    // Deciding on the initial state, "open" is accepted; the append at version 0 conflicts; the re-read refuses it.
    await expect(handleCommand(accounts, id, { type: "open", owner: "bob", overdraftLimit: 0 }, { newStream: true })).rejects.toThrow("already open");
    expect(calls.n).toBe(2);
    await expect(
      database.db.transaction((tx) => handleCommand(accounts, id, { type: "open", owner: "bob", overdraftLimit: 0 }, { tx, newStream: true })),
    ).rejects.toBeInstanceOf(StreamVersionConflictError);
    expect(await loadState(accounts, id)).toMatchObject({ version: 1, state: { owner: "ada" } });
  });
});

describe("handleCommand under concurrency", () => {
  it("lets two concurrent commands on one stream both succeed: the loser re-reads, re-decides and appends after the winner", async () => {
    const { calls, decider } = counting(bankAccount);
    const accounts = accountsWith({ decider });
    const id = newId();
    await openWith(accounts, id);
    calls.n = 0;
    const held = await holdVersion(`account-${id}`, 2, deposited(1000));
    const both = Promise.allSettled([
      handleCommand(accounts, id, { type: "deposit", amount: 10 }),
      handleCommand(accounts, id, { type: "deposit", amount: 20 }),
    ]);
    await lockWaiters(2); // both read version 1 and wait to append version 2
    await held.rollback();
    const [a, b] = await both;
    expect(a.status).toBe("fulfilled");
    expect(b.status).toBe("fulfilled");
    const versions = [a, b].map((r) => (r as PromiseFulfilledResult<{ version: number }>).value.version).sort();
    expect(versions).toEqual([2, 3]);
    expect(calls.n).toBe(3); // one of them decided twice
    expect(await loadState(accounts, id)).toMatchObject({ version: 3, state: { balance: 30, movements: 2 } });
  });

  it("decides the retry against the state the winner left: a rule that now fails throws the domain error", async () => {
    const accounts = accountsWith();
    const id = newId();
    await openWith(accounts, id, { type: "deposit", amount: 10 });
    const held = await holdVersion(`account-${id}`, 3, withdrawn(5));
    const pending = handleCommand(accounts, id, { type: "withdraw", amount: 8 }).catch((e) => e);
    await lockWaiters(1); // it read a balance of 10 and decided the withdrawal
    await held.commit();
    expect(await pending).toBeInstanceOf(InsufficientFundsError);
    expect(await loadState(accounts, id)).toMatchObject({ version: 3, state: { balance: 5 } });
  });

  it("gives up after maxAttempts with a conflict error that says how many attempts it made", async () => {
    const { calls, decider } = counting(bankAccount);
    const accounts = accountsWith({ decider, maxAttempts: 2 });
    const id = newId();
    await openWith(accounts, id);
    calls.n = 0;
    // Two writers keep moving the stream: one holds version 2, the other version 3.
    const second = await holdVersion(`account-${id}`, 2, deposited(1));
    const third = await holdVersion(`account-${id}`, 3, deposited(1));
    const pending = handleCommand(accounts, id, { type: "deposit", amount: 5 }).catch((e) => e);
    await lockWaiters(1);
    await second.commit(); // attempt 1 conflicts at version 2, attempt 2 reads 2 and waits on 3
    await eventually(() => calls.n === 2, 10_000);
    await lockWaiters(1);
    await third.commit();
    const err = await pending;
    expect(err).toBeInstanceOf(StreamVersionConflictError);
    expect(err).toMatchObject({ kind: "conflict", code: "EVENTS.CONCURRENCY_CONFLICT", attempts: 2, streamId: `account-${id}`, expectedVersion: 2 });
    expect(err.message).toContain("2 attempts");
    expect(calls.n).toBe(2);
    expect(await loadState(accounts, id)).toMatchObject({ version: 3, state: { balance: 2 } });
  });

  it("in the caller's transaction, throws the conflict at once, without retrying, and the caller's writes roll back", async () => {
    const { calls, decider } = counting(bankAccount);
    const accounts = accountsWith({ decider });
    const id = newId();
    await openWith(accounts, id);
    calls.n = 0;
    await raw`create table if not exists public.audit (note text)`;
    const held = await holdVersion(`account-${id}`, 2, deposited(1));
    let thrownByHandleCommand: unknown;
    const pending = database.db
      .transaction(async (tx) => {
        await tx.execute(sql`insert into public.audit values (${`conflict-${id}`})`);
        try {
          await handleCommand(accounts, id, { type: "deposit", amount: 5 }, { tx });
        } catch (err) {
          thrownByHandleCommand = err;
          throw err;
        }
      })
      .catch((e) => e);
    await lockWaiters(1);
    await held.commit();
    const err = await pending;
    expect(err).toBeInstanceOf(StreamVersionConflictError);
    expect(thrownByHandleCommand).toBe(err);
    expect(err).toMatchObject({ attempts: 1, expectedVersion: 1 });
    expect(calls.n).toBe(1);
    const [audit] = await raw`select count(*)::int as n from public.audit where note = ${`conflict-${id}`}`;
    expect(audit!.n).toBe(0);
    expect(await loadState(accounts, id)).toMatchObject({ version: 2, state: { balance: 1 } });
  });

  it("answers a conflict that outlasts the retries with a 409 problem, and decide's domain errors with their own status", async () => {
    const accounts = accountsWith({ maxAttempts: 1 });
    const store: IdempotencyStore = { begin: async () => ({ state: "new" }), complete: async () => {}, abandon: async () => {} };
    const app = createHttpApp(
      {
        log: pino({ level: "silent" }),
        verifyToken: async () => {
          throw new Error("no tokens here");
        },
        rateLimiter: createMemoryRateLimiter({ max: 1000, windowSeconds: 60 }),
        idempotencyStore: store,
        bodyLimitBytes: 10_000,
        corsOrigins: [],
        servesApi: true,
        readiness: async () => [],
      },
      (api) => {
        api.post("/accounts/:id/withdrawals", async (c) => {
          const { amount } = (await c.req.json()) as { amount: number };
          const r = await handleCommand(accounts, c.req.param("id"), { type: "withdraw", amount });
          return c.json({ version: r.version, balance: r.state.balance });
        });
      },
    );
    const id = newId();
    await openWith(accounts, id, { type: "deposit", amount: 100 });
    const withdraw = (amount: number) =>
      app.request(`/api/v1/accounts/${id}/withdrawals`, { method: "POST", body: JSON.stringify({ amount }), headers: { "content-type": "application/json" } });
    const held = await holdVersion(`account-${id}`, 3, withdrawn(1));
    const pending = withdraw(10);
    await lockWaiters(1);
    await held.commit();
    const problem = await expectProblem(await pending, 409, "EVENTS.CONCURRENCY_CONFLICT");
    expect(problem.detail).toContain(`account-${id}`);
    const ok = await withdraw(10);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ version: 4, balance: 89 });
    await expectProblem(await withdraw(1000), 422, "BANKING.INSUFFICIENT_FUNDS");
  });
});

describe("a batch of commands in the caller's transaction", () => {
  it("loadStreams reads several streams in one round trip, each as loadState reads it (snapshot plus tail; unknown ids at version 0)", async () => {
    const accounts = accountsWith({ snapshotEvery: 3 });
    const replaying = accountsWith({ snapshotEvery: 0 });
    const [a, b, none] = [newId(), newId(), newId()];
    await openWith(accounts, a, { type: "deposit", amount: 5 }, { type: "deposit", amount: 7 }, { type: "withdraw", amount: 2 });
    await openWith(accounts, b, { type: "deposit", amount: 1 });
    expect(await snapshotRow(`account-${a}`)).toMatchObject({ version: 3 });
    const proxy = await countingProxy(tdb.url);
    const counted = connectDatabase(proxy.url, { max: 1 });
    try {
      const viaProxy = eventSourced({
        name: "account",
        decider: bankAccount,
        events: bankingEvents,
        db: counted.db,
        outbox: outbox.appender,
        snapshotEvery: 3,
      });
      await loadStreams(viaProxy, counted.db, [none]); // connects, and prepares the statement (a first use costs a round trip more)
      const before = proxy.flushes;
      const loaded = await loadStreams(viaProxy, counted.db, [a, b, none]);
      expect(proxy.flushes - before).toBe(1);
      for (const id of [a, b, none]) {
        const one = await loadState(accounts, id);
        expect(loaded.get(id)).toMatchObject({ state: one.state, version: one.version });
      }
      expect(loaded.get(a)).toMatchObject({ version: 4, snapshotVersion: 3, state: { balance: 10 } });
      expect(loaded.get(none)).toEqual({ state: bankAccount.initialState(), version: 0, snapshotVersion: 0 });
      const replayed = await loadStreams(replaying, database.db, [a, b]);
      expect(replayed.get(a)).toMatchObject({ version: 4, snapshotVersion: 0, state: { balance: 10 } });
    } finally {
      await counted.close(1);
      proxy.close();
    }
  });

  it("decides on the stream the caller read (no read of its own), and write-behind fails the caller's commit with a conflict when another writer appended since", async () => {
    const accounts = accountsWith();
    const [fresh, stale] = [newId(), newId()];
    await openWith(accounts, fresh);
    await openWith(accounts, stale);
    // Read in the caller's transaction, then used: appended at the next version, no second read.
    await database.db.transaction(async (tx) => {
      const loaded = await loadStreams(accounts, tx, [fresh]);
      const r = await handleCommand(accounts, fresh, { type: "deposit", amount: 3 }, { tx, loaded: loaded.get(fresh), writeBehind: true });
      expect(r.version).toBe(2);
    });
    expect(await loadState(accounts, fresh)).toMatchObject({ version: 2, state: { balance: 3 } });
    // Another writer appends between the read and the commit: the commit fails with the conflict, nothing is written.
    await raw`create table if not exists public.audit (note text)`;
    const err = await database.db
      .transaction(async (tx) => {
        const loaded = await loadStreams(accounts, tx, [stale]);
        await handleCommand(accounts, stale, { type: "deposit", amount: 1 }, { tx });
        await tx.execute(sql`insert into public.audit values (${`stale-${stale}`})`);
        // Decided on the version read before the deposit above: version 2 is taken by then.
        await handleCommand(accounts, stale, { type: "deposit", amount: 5 }, { tx, loaded: loaded.get(stale), writeBehind: true });
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamVersionConflictError);
    const [audit] = await raw`select count(*)::int as n from public.audit where note = ${`stale-${stale}`}`;
    expect(audit!.n).toBe(0);
    expect(await loadState(accounts, stale)).toMatchObject({ version: 1, state: { balance: 0 } });
  });
});

describe("snapshots", () => {
  it("takes one every N events: none at N-1, one at N, the same at N+1, the next at 2N", async () => {
    const accounts = accountsWith({ snapshotEvery: 5 });
    const id = newId();
    const streamId = `account-${id}`;
    await openWith(accounts, id);
    const seen: [number, number | undefined][] = [];
    for (let v = 2; v <= 11; v++) {
      await handleCommand(accounts, id, { type: "deposit", amount: v });
      seen.push([v, (await snapshotRow(streamId))?.version]);
    }
    expect(seen).toEqual([
      [2, undefined],
      [3, undefined],
      [4, undefined],
      [5, 5],
      [6, 5],
      [7, 5],
      [8, 5],
      [9, 5],
      [10, 10],
      [11, 10],
    ]);
    const row = await snapshotRow(streamId);
    expect(row).toMatchObject({ decider: "account", evolve_version: 1 });
    expect(row!.state).toEqual((await stateAtVersion(accountsWith({ snapshotEvery: 0 }), id, 10)).state);
  });

  it("snapshots after a command that jumps past the boundary, at the version it reached", async () => {
    const accounts = accountsWith({ snapshotEvery: 5 });
    const id = newId();
    await openWith(accounts, id, { type: "deposit", amount: 1 }, { type: "deposit", amount: 1 }); // version 3
    await handleCommand(accounts, id, { type: "depositMany", amounts: [1, 1, 1, 1] }); // version 7
    expect((await snapshotRow(`account-${id}`))?.version).toBe(7);
    await handleCommand(accounts, id, { type: "depositMany", amounts: [1, 1, 1, 1] }); // 11: only 4 past the snapshot
    expect((await snapshotRow(`account-${id}`))?.version).toBe(7);
    await handleCommand(accounts, id, { type: "deposit", amount: 1 }); // 12
    expect((await snapshotRow(`account-${id}`))?.version).toBe(12);
  });

  it("starts every load from the snapshot and folds only the events after it", async () => {
    const accounts = accountsWith({ snapshotEvery: 3 });
    const id = newId();
    await openWith(accounts, id, { type: "deposit", amount: 1 }, { type: "deposit", amount: 1 }, { type: "deposit", amount: 1 }); // snapshot at 3, version 4
    // Tamper with the snapshot: a load that reads it shows the change; a replay would not.
    await raw`update outbox.snapshots set state = jsonb_set(state, '{balance}', '1000') where stream_id = ${`account-${id}`}`;
    expect(await loadState(accounts, id)).toMatchObject({ version: 4, state: { balance: 1001 } });
    expect((await handleCommand(accounts, id, { type: "deposit", amount: 1 })).state.balance).toBe(1002);
    // With snapshots off, neither read nor written: the true balance.
    expect((await loadState(accountsWith({ snapshotEvery: 0 }), id)).state.balance).toBe(4);
  });

  it("ignores a snapshot taken by another evolve version or another decider, replays, and snapshots again", async () => {
    const v1 = accountsWith({ snapshotEvery: 5 });
    const id = newId();
    const streamId = `account-${id}`;
    await openWith(v1, id, ...Array.from({ length: 6 }, () => ({ type: "deposit" as const, amount: 2 }))); // version 7, snapshot at 5
    await raw`update outbox.snapshots set state = jsonb_set(state, '{balance}', '1000') where stream_id = ${streamId}`;
    // A changed evolve: it counts opening and closing as movements too.
    const evolve2: typeof bankAccount.evolve = (s, e) => ({ ...bankAccount.evolve(s, e), movements: s.movements + 1 });
    const decider2 = { ...bankAccount, evolve: evolve2, evolveVersion: 2 };
    const v2 = accountsWith({ decider: decider2, snapshotEvery: 5 });
    const all = (await streamHistory(v1, id)).map((h) => h.event);
    expect(await loadState(v2, id)).toEqual({ version: 7, state: fold(decider2, all) });
    expect((await loadState(v2, id)).state).toMatchObject({ balance: 12, movements: 7 });
    const r = await handleCommand(v2, id, { type: "deposit", amount: 1 });
    expect(r.state).toMatchObject({ balance: 13, movements: 8 });
    expect(await snapshotRow(streamId)).toMatchObject({ version: 8, evolve_version: 2, state: { balance: 13, movements: 8 } });
    // v1 now ignores v2's snapshot in turn, and so does a decider of another name on the same stream.
    expect(await loadState(v1, id)).toEqual({ version: 8, state: fold(bankAccount, [...all, deposited(1)]) });
    const renamed = accountsWith({ name: "ledger", streamId: (x) => `account-${x}` });
    expect((await loadState(renamed, id)).state).toEqual(fold(bankAccount, [...all, deposited(1)]));
  });
});

describe("temporal reads", () => {
  const build = async (snapshotEvery: number) => {
    const accounts = accountsWith({ snapshotEvery });
    const id = newId();
    await openWith(
      accounts,
      id,
      { type: "deposit", amount: 10 },
      { type: "withdraw", amount: 3 },
      { type: "depositMany", amounts: [1, 2, 3] },
      { type: "withdraw", amount: 4 },
    );
    const events = [opened(), deposited(10), withdrawn(3), deposited(1), deposited(2), deposited(3), withdrawn(4)];
    return { accounts, id, events };
  };

  it("gives the state at every version, before the first and past the last", async () => {
    const { accounts, id, events } = await build(3);
    for (let v = 0; v <= events.length; v++) {
      expect(await stateAtVersion(accounts, id, v)).toEqual({ version: v, state: fold(bankAccount, events.slice(0, v)) });
    }
    expect(await stateAtVersion(accounts, id, 99)).toEqual({ version: 7, state: fold(bankAccount, events) });
    expect(await stateAtVersion(accounts, id, Number.MAX_SAFE_INTEGER)).toMatchObject({ version: 7 });
    await expect(stateAtVersion(accounts, id, -1)).rejects.toThrow(RangeError);
  });

  it("starts from the snapshot only when it is at or below the version asked for", async () => {
    const { accounts, id, events } = await build(3); // snapshots at 3, then 6
    expect((await snapshotRow(`account-${id}`))?.version).toBe(6);
    await raw`update outbox.snapshots set state = jsonb_set(state, '{balance}', '1000') where stream_id = ${`account-${id}`}`;
    expect((await stateAtVersion(accounts, id, 7)).state.balance).toBe(1000 - 4); // from the snapshot at 6
    expect((await stateAtVersion(accounts, id, 6)).state.balance).toBe(1000);
    expect((await stateAtVersion(accounts, id, 5)).state).toEqual(fold(bankAccount, events.slice(0, 5))); // replayed
  });

  it("gives the state at a time: every event stamped at or before it, and nothing before the first", async () => {
    const { accounts, id, events } = await build(3);
    const base = Date.parse("2030-01-01T00:00:00Z");
    const at = (version: number, plusMs = 0) => new Date(base + version * 60_000 + plusMs);
    await raw`update outbox.events set time = ${new Date(base).toISOString()}::timestamptz + stream_version * interval '1 minute' where stream_id = ${`account-${id}`}`;
    expect(await stateAtTime(accounts, id, at(0, 59_000))).toEqual({ version: 0, state: bankAccount.initialState() });
    for (let v = 1; v <= events.length; v++) {
      expect(await stateAtTime(accounts, id, at(v))).toEqual({ version: v, state: fold(bankAccount, events.slice(0, v)) }); // exactly at: included
      expect(await stateAtTime(accounts, id, at(v, 30_000).toISOString())).toMatchObject({ version: v });
      expect(await stateAtTime(accounts, id, at(v, -1))).toMatchObject({ version: v - 1 });
    }
    expect(await stateAtTime(accounts, id, new Date(base + 3_600_000))).toMatchObject({ version: 7 });
    await expect(stateAtTime(accounts, id, "not a time")).rejects.toThrow(RangeError);
  });

  it("reads the history: each event with the state after it and its envelope", async () => {
    const { accounts, id, events } = await build(3);
    const history = await streamHistory(accounts, id);
    expect(history.map((h) => h.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(history.map((h) => h.event)).toEqual(events);
    history.forEach((h, i) => {
      expect(h.state).toEqual(fold(bankAccount, events.slice(0, i + 1)));
      expect(h.envelope).toMatchObject({ type: events[i]!.type, subject: id, source: "banking" });
      expect(h.envelope.sequence).toBeString();
    });
    expect(history[0]!.state).not.toBe(history[1]!.state);
    expect((await streamHistory(accounts, id, { toVersion: 2 })).map((h) => h.state.balance)).toEqual([0, 10]);
    expect(await streamHistory(accounts, newId())).toEqual([]);
  });

  it("reads an unknown stream as the initial state at version 0", async () => {
    const accounts = accountsWith();
    const id = newId();
    expect(await loadState(accounts, id)).toEqual({ version: 0, state: bankAccount.initialState() });
    expect(await stateAtVersion(accounts, id, 3)).toEqual({ version: 0, state: bankAccount.initialState() });
    expect(await stateAtTime(accounts, id, new Date())).toEqual({ version: 0, state: bankAccount.initialState() });
  });
});

describe("eventSourced", () => {
  it("refuses options that cannot work", () => {
    expect(() => accountsWith({ name: "Account" })).toThrow(/lower-case/);
    expect(() => accountsWith({ snapshotEvery: -1 })).toThrow(/snapshotEvery/);
    expect(() => accountsWith({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => accountsWith({ decider: { ...bankAccount, evolveVersion: 1.5 } })).toThrow(/evolveVersion/);
  });
});
