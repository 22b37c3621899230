import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import fc from "fast-check";
import pino from "pino";
import postgres from "postgres";
import { type CommandResult, eventSourced, handleCommand, loadState, stateAtVersion, streamHistory } from "../../outbox/event-sourcing/index.ts";
import { createOutbox } from "../../outbox/index.ts";
import { connectDatabase, type Database } from "../../src/db/client.ts";
import { DomainError } from "../../src/errors.ts";
import { fold } from "../../src/events/decider.ts";
import { EventRegistry } from "../../src/events/registry.ts";
import { type AccountCommand, type AccountEvent, type AccountState, bankAccount, bankingEvents } from "../support/bank-account.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";

let tdb: TestDatabase;
let database: Database;
let raw: postgres.Sql;
let outbox: ReturnType<typeof createOutbox>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  database = connectDatabase(tdb.url, { max: 4 });
  raw = postgres(tdb.url, { max: 1, onnotice: () => {} });
  outbox = createOutbox({ database, registry: new EventRegistry().register(...bankingEvents), log: pino({ level: "silent" }) });
});
afterAll(async () => {
  await outbox.stop();
  await raw.end({ timeout: 2 });
  await database.close(2);
  await tdb.drop();
});

// Commands that append one event, several or none, and some that the rules refuse (a second
// open, an overdrawing withdrawal, closing a non-empty account, anything after closing).
const amount = fc.integer({ min: 1, max: 100 });
const command: fc.Arbitrary<AccountCommand> = fc.oneof(
  { arbitrary: amount.map((a) => ({ type: "deposit" as const, amount: a })), weight: 4 },
  { arbitrary: fc.array(amount, { maxLength: 6 }).map((amounts) => ({ type: "depositMany" as const, amounts })), weight: 3 },
  { arbitrary: fc.integer({ min: 1, max: 200 }).map((a) => ({ type: "withdraw" as const, amount: a })), weight: 3 },
  { arbitrary: fc.constant({ type: "open" as const, owner: "again" }), weight: 1 },
  { arbitrary: fc.constant({ type: "close" as const }), weight: 1 },
);

describe("snapshots", () => {
  it("for random command sequences, snapshot plus tail equals a full replay, at every step and at every version", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(command, { minLength: 1, maxLength: 30 }),
        async (every, overdraft, commands) => {
          runs++;
          const accounts = eventSourced({
            name: "account",
            decider: bankAccount,
            events: bankingEvents,
            db: database.db,
            outbox: outbox.appender,
            snapshotEvery: every,
          });
          const replaying = eventSourced({
            name: "account",
            decider: bankAccount,
            events: bankingEvents,
            db: database.db,
            outbox: outbox.appender,
            snapshotEvery: 0,
          });
          const id = crypto.randomUUID();
          const accepted: AccountEvent[] = [];
          for (const c of [{ type: "open" as const, owner: "ada", overdraftLimit: overdraft }, ...commands]) {
            let result: CommandResult<AccountState, AccountEvent> | undefined;
            try {
              result = await handleCommand(accounts, id, c);
            } catch (err) {
              if (!(err instanceof DomainError)) throw err;
            }
            if (!result) continue;
            accepted.push(...result.events);
            expect(result.version).toBe(accepted.length);
            expect(result.state).toEqual(fold(bankAccount, accepted));
            expect(await loadState(accounts, id)).toEqual({ state: result.state, version: accepted.length });
          }
          const full = fold(bankAccount, accepted);
          expect(await loadState(accounts, id)).toEqual({ state: full, version: accepted.length });
          expect(await loadState(replaying, id)).toEqual({ state: full, version: accepted.length });
          expect((await streamHistory(accounts, id)).map((h) => h.event)).toEqual(accepted);
          const [snapshot] = await raw<
            { version: number; state: AccountState }[]
          >`select version, state from outbox.snapshots where stream_id = ${`account-${id}`}`;
          // Not vacuous: once the stream is N long, loads start from a snapshot.
          if (accepted.length >= every) expect(snapshot?.version).toBeGreaterThan(accepted.length - every);
          if (snapshot) expect(snapshot.state).toEqual(fold(bankAccount, accepted.slice(0, snapshot.version)));
          for (let v = 0; v <= accepted.length; v++) {
            expect(await stateAtVersion(accounts, id, v)).toEqual({ state: fold(bankAccount, accepted.slice(0, v)), version: v });
          }
        },
      ),
      // Bounded in runs and in time (each run is a few dozen round trips to Postgres).
      { numRuns: 100, interruptAfterTimeLimit: 60_000 },
    );
    expect(runs).toBeGreaterThanOrEqual(5);
  }, 120_000);
});
