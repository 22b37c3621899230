import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import postgres from "postgres";
import { createAppender } from "../../outbox/store.ts";
import {
  afterCommit,
  connectDatabase,
  type Database,
  rawSql,
  settleWriteBehind,
  TransactionAbortedError,
  TransactionFinishedError,
  type Tx,
  writeBehind,
} from "../../src/db/client.ts";
import { EventRegistry } from "../../src/events/registry.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { TestHappened } from "../support/outbox.ts";
import { ROOT } from "../support/process.ts";
import { within } from "../support/within.ts";

// Issue 13, items 1-9: each test reproduces one fault of the transaction runner. Hangs are bounded
// by `within`, so a regression fails here instead of stalling the suite.

let tdb: TestDatabase;
let d: Database;

beforeAll(async () => {
  tdb = await createTestDatabase();
  d = connectDatabase(tdb.url, { max: 4 });
  await d.sql`create table tx_faults (id serial primary key, note text not null unique)`;
});
afterAll(async () => {
  await d.close();
  await tdb.drop();
});

const notes = async (prefix: string) =>
  (await d.sql<{ note: string }[]>`select note from tx_faults where note like ${`${prefix}%`} order by note`).map((r) => r.note);
const insert = (tx: Tx, note: string) => rawSql(tx)`insert into tx_faults (note) values (${note})`;
const code = (err: unknown) => (err as { code?: string; cause?: { code?: string } }).code ?? (err as { cause?: { code?: string } }).cause?.code;
/** idleInTransaction counts this database's sessions left open inside a transaction. */
const idleInTransaction = async () =>
  (await d.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`)[0]!
    .n;

describe("1. a committed transaction is reported as committed", () => {
  it("resolves when a write-behind sent through the outer handle failed inside a savepoint that rolled back", async () => {
    await d.sql`insert into tx_faults (note) values ('one-dup')`;
    let inner: unknown;
    const result = await within(
      d.db.transaction(async (tx) => {
        await insert(tx, "one-kept");
        inner = await tx
          .transaction(async (sp) => {
            await writeBehind(tx, insert(tx, "one-dup")); // through the outer handle, inside the savepoint
            await insert(sp, "one-lost"); // fails with 25P02: the write-behind failed
          })
          .catch((e: unknown) => e);
        return "returned";
      }),
      5_000,
    );
    expect(result).toBe("returned");
    expect(code(inner)).toBe("23505"); // the savepoint reports the cause, not the 25P02
    expect(await notes("one-")).toEqual(["one-dup", "one-kept"]);
  });

  it("resolves when the failed write-behind was settled inside the savepoint", async () => {
    await d.sql`insert into tx_faults (note) values ('settled-dup')`;
    const result = await within(
      d.db.transaction(async (tx) => {
        await insert(tx, "settled-kept");
        await tx
          .transaction(async () => {
            await writeBehind(tx, insert(tx, "settled-dup"));
            await settleWriteBehind(tx);
          })
          .catch(() => {});
        return "returned";
      }),
      5_000,
    );
    expect(result).toBe("returned");
    expect(await notes("settled-")).toEqual(["settled-dup", "settled-kept"]);
  });
});

describe("2. an append through a finished transaction's handle", () => {
  it("rejects with TransactionFinishedError, writes nothing and wakes nobody", async () => {
    const woken: unknown[] = [];
    const appender = createAppender(new EventRegistry().register(TestHappened), (events) => woken.push(...events));
    let leaked: Tx | undefined;
    await d.db.transaction(async (tx) => {
      leaked = tx;
      await insert(tx, "leaked-inside");
    });
    const err = await appender.append(leaked!, [TestHappened.with({ n: 1 }, { subject: "leaked" })]).catch((e: unknown) => e);
    expect((err as { cause?: unknown }).cause ?? err).toBeInstanceOf(TransactionFinishedError);
    await new Promise((resolve) => setImmediate(resolve)); // a wake-up would have run by now
    expect(woken).toEqual([]);
    const [row] = await d.sql<{ n: number }[]>`select count(*)::int as n from outbox.events where subject = 'leaked'`;
    expect(row!.n).toBe(0);
  });
});

describe("3. a throwing afterCommit callback", () => {
  it("does not make the committed transaction reject; later callbacks run; the error is reported", async () => {
    const reported: unknown[] = [];
    const p = connectDatabase(tdb.url, { max: 1, onCallbackError: (e) => reported.push(e) });
    try {
      const boom = new Error("callback failed");
      const late = new Error("async callback failed");
      const seen: string[] = [];
      const result = await p.db.transaction(async (tx) => {
        await insert(tx, "callback-committed");
        afterCommit(() => seen.push("first"));
        afterCommit(() => {
          throw boom;
        });
        afterCommit((() => Promise.reject(late)) as () => void);
        afterCommit(() => seen.push("last"));
        return "committed";
      });
      expect(result).toBe("committed");
      expect(seen).toEqual(["first", "last"]);
      await eventually(() => reported.length === 2);
      expect(reported).toEqual([boom, late]);
      expect(await notes("callback-")).toEqual(["callback-committed"]);
    } finally {
      await p.close();
    }
  });
});

describe("4. a statement postgres.js refuses to send", () => {
  // A pool of one: a connection left behind inside a transaction would hang every later test.
  let one: Database;
  beforeAll(() => {
    one = connectDatabase(tdb.url, { max: 1 });
  });
  afterAll(() => one.close());

  const refused = (fn: (tx: Tx) => Promise<unknown>) => within(one.db.transaction(fn), 5_000, "the transaction").catch((e: unknown) => e);
  const servesAgain = async () => {
    const rows = await within(
      one.db.transaction((tx) => rawSql(tx)<{ ok: number }[]>`select 1 as ok`),
      2_000,
      "the next transaction",
    );
    expect(rows[0]?.ok).toBe(1);
    expect(await eventually(idleInTransaction, 2_000).catch(() => -1)).toBe(0);
  };

  it("fails the transaction with UNDEFINED_VALUE when it is the first statement (BEGIN in flight)", async () => {
    const err = await refused(async (tx) => {
      await rawSql(tx)`insert into tx_faults (note) values (${undefined as unknown as string})`;
    });
    expect(code(err)).toBe("UNDEFINED_VALUE");
    await servesAgain();
  });

  it("fails the transaction with UNDEFINED_VALUE when it follows a write-behind", async () => {
    const err = await refused(async (tx) => {
      await writeBehind(tx, insert(tx, "refused-after-behind"));
      await rawSql(tx)`select ${undefined as unknown as string}::text`;
    });
    expect(code(err)).toBe("UNDEFINED_VALUE");
    expect(await notes("refused-")).toEqual([]);
    await servesAgain();
  });

  it("fails a bulk insert past 65,534 parameters with MAX_PARAMETERS_EXCEEDED", async () => {
    const rows = Array.from({ length: 70_000 }, (_, i) => ({ note: `bulk-${i}` }));
    const err = await refused(async (tx) => {
      const sql = rawSql(tx);
      await sql`insert into tx_faults ${sql(rows, "note")}`;
    });
    expect(code(err)).toBe("MAX_PARAMETERS_EXCEEDED");
    expect(await notes("bulk-")).toEqual([]);
    await servesAgain();
  });

  it("lets the transaction go on when the refused statement was not pipelined and the callback caught it", async () => {
    const result = await within(
      one.db.transaction(async (tx) => {
        await insert(tx, "caught-kept");
        const err = await rawSql(tx)`select ${undefined as unknown as string}::text`.catch((e: unknown) => e);
        expect(code(err)).toBe("UNDEFINED_VALUE");
        return (await rawSql(tx)<{ n: number }[]>`select count(*)::int as n from tx_faults where note = 'caught-kept'`)[0]!.n;
      }),
      5_000,
    );
    expect(result).toBe(1);
    expect(await notes("caught-")).toEqual(["caught-kept"]);
  });
});

describe("5. a backend terminated mid-statement", () => {
  it("fails that transaction, and the pool of three serves transactions and plain queries within a second after three such kills", async () => {
    const p = connectDatabase(tdb.url, { max: 3 });
    const admin = postgres(tdb.url, { max: 1, onnotice: () => {} });
    try {
      // COMMIT is made slow by a deferred trigger, so a kill can land while it runs.
      await admin.unsafe(`
        create table slow_commit (note text);
        create function slow_commit_sleep() returns trigger language plpgsql as $$ begin perform pg_sleep(2); return null; end $$;
        create constraint trigger slow_commit_at_commit after insert on slow_commit deferrable initially deferred
          for each row execute function slow_commit_sleep()`);
      /** killWhile runs `body` in a transaction and terminates its backend once it is running `running`. */
      const killWhile = async (running: string, body: (tx: Tx) => Promise<unknown>) => {
        let pid = 0;
        const tx = p.db.transaction(async (t) => {
          pid = (await rawSql(t)<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid;
          await body(t);
        });
        tx.catch(() => {});
        await eventually(
          async () =>
            (
              await admin<
                { n: number }[]
              >`select count(*)::int as n from pg_stat_activity where pid = ${pid} and state = 'active' and query ilike ${`%${running}%`}`
            )[0]!.n === 1,
          5_000,
        );
        await admin`select pg_terminate_backend(${pid})`;
        return within(tx, 5_000, `the transaction killed during ${running}`).then(
          () => "committed",
          (e: unknown) => e,
        );
      };
      expect(await killWhile("pg_sleep(3)", (t) => rawSql(t)`select pg_sleep(3)`)).toBeInstanceOf(Error);
      expect(await killWhile("pg_sleep(3.5)", (t) => writeBehind(t, rawSql(t)`select pg_sleep(3.5)`))).toBeInstanceOf(Error);
      expect(await killWhile("commit", (t) => rawSql(t)`insert into slow_commit values ('x')`)).toBeInstanceOf(Error);

      const started = performance.now();
      const results = await within(
        Promise.all(Array.from({ length: 6 }, (_, i) => p.db.transaction((t) => insert(t, `after-kills-${i}`)))),
        1_000,
        "transactions after the kills",
      );
      expect(results).toHaveLength(6);
      expect((await within(p.sql<{ ok: number }[]>`select 1 as ok`, 1_000, "a plain query after the kills"))[0]?.ok).toBe(1);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await notes("after-kills-")).toHaveLength(6);
    } finally {
      await admin.end({ timeout: 1 });
      await p.close(1);
    }
  });
});

describe("6. db.transaction after close()", () => {
  it("rejects with CONNECTION_ENDED and lets the process exit", async () => {
    // In a process of its own: what is checked is that nothing keeps it alive afterwards.
    const child = Bun.spawn(["bun", "tests/support/transaction-after-close.ts"], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: tdb.url },
      stdout: "pipe",
      stderr: "pipe",
    });
    const exited = await within(child.exited, 10_000, "the process").catch((e: unknown) => {
      child.kill("SIGKILL");
      return e;
    });
    expect(exited).toBe(0);
    expect((await new Response(child.stdout).text()).trim()).toBe("CONNECTION_ENDED");
  });
});

describe("7. afterCommit belongs to the transaction that registered it", () => {
  it("drops the callbacks of a savepoint that rolled back and keeps those of one that was released", async () => {
    const seen: string[] = [];
    await d.db.transaction(async (tx) => {
      afterCommit(() => seen.push("outer"));
      await tx.transaction(async () => afterCommit(() => seen.push("released")));
      await tx
        .transaction(async () => {
          afterCommit(() => seen.push("rolled back"));
          throw new Error("undo");
        })
        .catch(() => {});
    });
    expect(seen).toEqual(["outer", "released"]);
  });

  it("runs an independent transaction's callbacks when it commits, whatever the enclosing one does", async () => {
    const seen: string[] = [];
    await d.db
      .transaction(async (outer) => {
        afterCommit(() => seen.push("outer"));
        await d.db.transaction(async (inner) => {
          await insert(inner, "independent-committed");
          afterCommit(() => seen.push("inner committed"));
        });
        expect(seen).toEqual(["inner committed"]); // at the inner commit, not the outer's
        await d.db
          .transaction(async () => {
            afterCommit(() => seen.push("inner rolled back"));
            throw new Error("inner fails");
          })
          .catch(() => {});
        await insert(outer, "independent-outer");
        throw new Error("outer fails");
      })
      .catch(() => {});
    expect(seen).toEqual(["inner committed"]);
    expect(await notes("independent-")).toEqual(["independent-committed"]);
  });

  it("gives work spawned inside a finished transaction its callbacks when its own transaction commits", async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let spawned!: Promise<void>;
    await d.db.transaction(async (tx) => {
      await insert(tx, "spawner");
      spawned = (async () => {
        await gate; // runs after the spawning transaction has committed
        await d.db.transaction(async (own) => {
          await insert(own, "spawned");
          afterCommit(() => seen.push("spawned committed"));
        });
      })();
    });
    release();
    await within(spawned, 5_000, "the spawned transaction");
    expect(seen).toEqual(["spawned committed"]);
  });
});

describe("8. a swallowed error keeps its cause", () => {
  it("carries a caught 40001 as the cause of TransactionAbortedError, with its SQLSTATE", async () => {
    const err = await d.db
      .transaction(async (tx) => {
        await insert(tx, "serialization-lost");
        await rawSql(tx)`do $$ begin raise exception 'could not serialize' using errcode = '40001'; end $$`.catch(() => {});
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionAbortedError);
    expect((err as Error).cause).toMatchObject({ code: "40001" });
    expect((err as TransactionAbortedError).code).toBe("40001");
    expect(await notes("serialization-")).toEqual([]);
  });

  it("carries a caught 55P03 (lock not available) the same way", async () => {
    await d.sql`insert into tx_faults (note) values ('locked-row')`;
    const holder = await d.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from tx_faults where note = 'locked-row' for update`;
      const err = await d.db
        .transaction(async (tx) => {
          await rawSql(tx)`select 1 from tx_faults where note = 'locked-row' for update nowait`.catch(() => {});
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransactionAbortedError);
      expect((err as Error).cause).toMatchObject({ code: "55P03" });
      expect((err as TransactionAbortedError).code).toBe("55P03");
    } finally {
      await holder`rollback`;
      holder.release();
    }
  });
});

describe("9. rawSql(tx).savepoint", () => {
  it("takes a name and a callback, or a callback alone, as in postgres.js", async () => {
    await d.db.transaction(async (tx) => {
      const sql = rawSql(tx) as unknown as postgres.TransactionSql; // rawSql is typed for the pool and transactions alike
      const named = await sql.savepoint("named", (s) => s<{ note: string }[]>`insert into tx_faults (note) values ('savepoint-named') returning note`);
      expect(named[0]?.note).toBe("savepoint-named");
      await sql.savepoint((s) => s`insert into tx_faults (note) values ('savepoint-unnamed')`);
      await sql
        .savepoint("undone", async (s) => {
          await s`insert into tx_faults (note) values ('savepoint-undone')`;
          throw new Error("undo");
        })
        .catch(() => {});
    });
    expect(await notes("savepoint-")).toEqual(["savepoint-named", "savepoint-unnamed"]);
  });
});
