import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { connect, createServer, type Server, type Socket } from "node:net";
import { sql } from "drizzle-orm";
import { afterCommit, connectDatabase, type Database, rawSql, TransactionAbortedError, TransactionFinishedError, writeBehind } from "../../src/db/client.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";

let tdb: TestDatabase;
let d: Database;

beforeAll(async () => {
  tdb = await createTestDatabase();
  d = connectDatabase(tdb.url, { max: 4 });
  await d.sql`create table tx_notes (id serial primary key, note text not null unique)`;
});
afterAll(async () => {
  await d.close();
  await tdb.drop();
});

const notes = async (prefix: string) =>
  (await d.sql<{ note: string }[]>`select note from tx_notes where note like ${`${prefix}%`} order by note`).map((r) => r.note);
const insert = (tx: Parameters<Parameters<Database["db"]["transaction"]>[0]>[0], note: string) => rawSql(tx)`insert into tx_notes (note) values (${note})`;

describe("db.transaction", () => {
  it("commits what the callback wrote and returns its result", async () => {
    const result = await d.db.transaction(async (tx) => {
      await insert(tx, "commit-a");
      await tx.execute(sql`insert into tx_notes (note) values ('commit-b')`);
      return 42;
    });
    expect(result).toBe(42);
    expect(await notes("commit-")).toEqual(["commit-a", "commit-b"]);
  });

  it("rolls back everything, the first statement included, when the callback throws", async () => {
    const boom = new Error("boom");
    await expect(
      d.db.transaction(async (tx) => {
        await insert(tx, "throw-first"); // rides in the same packet as BEGIN: it must still be inside the transaction
        await insert(tx, "throw-second");
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await notes("throw-")).toEqual([]);
  });

  it("does not commit when the callback swallowed a failed statement: TransactionAbortedError, nothing written", async () => {
    await d.sql`insert into tx_notes (note) values ('swallow-existing')`;
    const err = await d.db
      .transaction(async (tx) => {
        await insert(tx, "swallow-new");
        await insert(tx, "swallow-existing").catch(() => {}); // unique violation, caught and ignored
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionAbortedError);
    expect(await notes("swallow-")).toEqual(["swallow-existing"]);
  });

  it("runs nested transactions as savepoints: an inner failure rolls back only the inner writes", async () => {
    await d.db.transaction(async (tx) => {
      await insert(tx, "nest-outer");
      await expect(
        tx.transaction(async (inner) => {
          await insert(inner, "nest-inner-lost");
          await insert(inner, "nest-outer"); // unique violation inside the savepoint
        }),
      ).rejects.toThrow();
      await tx.transaction(async (inner) => {
        await insert(inner, "nest-inner-kept");
        await inner.transaction((deeper) => insert(deeper, "nest-inner-deeper"));
      });
    });
    expect(await notes("nest-")).toEqual(["nest-inner-deeper", "nest-inner-kept", "nest-outer"]);
  });

  it("applies the isolation level and access mode asked for", async () => {
    const [row] = await d.db.transaction(
      (tx) => rawSql(tx)<{ iso: string; ro: string }[]>`select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro`,
      { isolationLevel: "serializable", accessMode: "read only" },
    );
    expect(row).toEqual({ iso: "serializable", ro: "on" });
    const [plain] = await d.db.transaction((tx) => rawSql(tx)<{ iso: string }[]>`select current_setting('transaction_isolation') as iso`);
    expect(plain!.iso).toBe("read committed");
  });

  it("refuses statements sent through a handle after its transaction ended, instead of running them on a pooled connection", async () => {
    let leaked: Parameters<Parameters<Database["db"]["transaction"]>[0]>[0] | undefined;
    await d.db.transaction(async (tx) => {
      leaked = tx;
      await insert(tx, "leak-inside");
    });
    await expect(insert(leaked!, "leak-after-commit")).rejects.toBeInstanceOf(TransactionFinishedError);
    // drizzle wraps driver errors in DrizzleQueryError, with the driver's error as the cause.
    const viaDrizzle = await leaked!.execute(sql`insert into tx_notes (note) values ('leak-drizzle')`).catch((e: { cause?: unknown }) => e.cause);
    expect(viaDrizzle).toBeInstanceOf(TransactionFinishedError);
    await expect(
      d.db.transaction(async (tx) => {
        leaked = tx;
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    await expect(insert(leaked!, "leak-after-rollback")).rejects.toBeInstanceOf(TransactionFinishedError);
    expect(await notes("leak-")).toEqual(["leak-inside"]);
  });

  it("runs afterCommit callbacks once the outermost transaction committed, and never after a rollback", async () => {
    const seen: string[] = [];
    await d.db.transaction(async (tx) => {
      afterCommit(() => seen.push("committed"));
      await tx.transaction(async () => afterCommit(() => seen.push("inner")));
      expect(seen).toEqual([]);
    });
    expect(seen).toEqual(["committed", "inner"]);
    await d.db
      .transaction(async () => {
        afterCommit(() => seen.push("rolled back"));
        throw new Error("no");
      })
      .catch(() => {});
    expect(seen).toEqual(["committed", "inner"]);
  });

  it("gives every connection back: 200 transactions, some failing, on a pool of one", async () => {
    const one = connectDatabase(tdb.url, { max: 1 });
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) =>
          one.db.transaction(async (tx) => {
            await insert(tx, `pool-${String(i).padStart(3, "0")}`);
            if (i % 3 === 0) throw new Error("fail");
          }),
        ),
      );
      expect(results.filter((r) => r.status === "rejected")).toHaveLength(67);
      expect(await notes("pool-")).toHaveLength(133);
      const [row] = await one.sql<{ ok: number }[]>`select 1 as ok`;
      expect(row!.ok).toBe(1);
    } finally {
      await one.close();
    }
  });

  it("fails a transaction whose connection dies, commits nothing, and the pool recovers", async () => {
    const one = connectDatabase(tdb.url, { max: 1 });
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on("uncaughtException", onError);
    try {
      const err = await one.db
        .transaction(async (tx) => {
          await insert(tx, "dead-before");
          const [me] = await rawSql(tx)<{ pid: number }[]>`select pg_backend_pid() as pid`;
          await d.sql`select pg_terminate_backend(${me!.pid})`;
          await Bun.sleep(50);
          await insert(tx, "dead-after").catch(() => {}); // swallowed: the runner must still fail the transaction
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(await notes("dead-")).toEqual([]);
      await eventually(async () => {
        await one.db.transaction((tx) => insert(tx, "dead-recovered"));
      });
      expect(await notes("dead-")).toEqual(["dead-recovered"]);
      expect(errors).toEqual([]);
    } finally {
      process.off("uncaughtException", onError);
      await one.close();
    }
  });

  it("lets the pool close as soon as a transaction in flight at shutdown ends", async () => {
    const p = connectDatabase(tdb.url, { max: 2 });
    const running = p.db.transaction(async (tx) => {
      await rawSql(tx)`select pg_sleep(0.2)`;
      await insert(tx, "shutdown-committed");
    });
    await Bun.sleep(50);
    const started = performance.now();
    const closing = p.sql.end({ timeout: 10 });
    await running;
    await closing;
    // The connection closes when its transaction ends, not when end()'s 10 s timeout destroys it.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await notes("shutdown-")).toEqual(["shutdown-committed"]);
  });

  it("sends BEGIN with the first statement: a one-statement transaction costs two round trips", async () => {
    const { proxy, p } = await viaCountingProxy();
    try {
      await p.db.transaction((tx) => insert(tx, "trips-warm")); // connects and prepares the statement
      proxy.flushes = 0;
      await p.db.transaction((tx) => insert(tx, "trips-measured"));
      expect(proxy.flushes).toBe(2); // BEGIN + INSERT, then COMMIT
      expect(await notes("trips-")).toEqual(["trips-measured", "trips-warm"]);
    } finally {
      await p.close();
      proxy.close();
    }
  });
});

describe("writeBehind", () => {
  it("resolves at once, keeps statement order, and commits the write", async () => {
    const seen = await d.db.transaction(async (tx) => {
      await writeBehind(tx, insert(tx, "behind-a"));
      const [row] = await rawSql(tx)<{ n: number }[]>`select count(*)::int as n from tx_notes where note = 'behind-a'`;
      return row!.n;
    });
    expect(seen).toBe(1); // a later statement in the transaction sees the row
    expect(await notes("behind-")).toEqual(["behind-a"]);
  });

  it("fails the transaction with the statement's own error when it failed, even after later statements", async () => {
    await d.sql`insert into tx_notes (note) values ('wb-dup')`;
    const alone = await d.db
      .transaction(async (tx) => {
        await insert(tx, "wb-lost-1");
        await writeBehind(tx, insert(tx, "wb-dup"));
      })
      .catch((e: { code?: string }) => e);
    expect(alone).toMatchObject({ code: "23505" });
    const followed = await d.db
      .transaction(async (tx) => {
        await writeBehind(tx, insert(tx, "wb-dup"));
        await insert(tx, "wb-lost-2"); // fails with 25P02 because the write-behind failed
      })
      .catch((e: { code?: string }) => e);
    expect(followed).toMatchObject({ code: "23505" });
    expect(await notes("wb-")).toEqual(["wb-dup"]);
  });

  it("waits for the statement where there is no transaction to check it at commit", async () => {
    await expect(writeBehind(d.db, d.sql`insert into tx_notes (note) values ('wb-dup')`)).rejects.toMatchObject({ code: "23505" });
  });

  it("lets COMMIT travel with the last write: a read and a write-behind write cost two round trips", async () => {
    const { proxy, p } = await viaCountingProxy();
    try {
      const run = (note: string) =>
        p.db.transaction(async (tx) => {
          await rawSql(tx)`select count(*) from tx_notes`;
          await writeBehind(tx, insert(tx, note));
        });
      await run("rt-warm");
      proxy.flushes = 0;
      await run("rt-measured");
      expect(proxy.flushes).toBe(2); // BEGIN + SELECT, then INSERT + COMMIT
      expect(await notes("rt-")).toEqual(["rt-measured", "rt-warm"]);
    } finally {
      await p.close();
      proxy.close();
    }
  });
});

/** viaCountingProxy opens a one-connection pool on the test database through a countingProxy. */
async function viaCountingProxy(): Promise<{ proxy: Awaited<ReturnType<typeof countingProxy>>; p: Database }> {
  const proxy = await countingProxy(new URL(tdb.url));
  const via = new URL(tdb.url);
  via.port = String(proxy.port);
  return { proxy, p: connectDatabase(via.toString(), { max: 1 }) };
}

/** countingProxy forwards TCP to Postgres and counts the separate writes the client makes (its round trips once connected). */
async function countingProxy(target: URL): Promise<{ port: number; flushes: number; close(): void }> {
  const sockets = new Set<Socket>();
  const state = { port: 0, flushes: 0, close: () => {} };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.on("data", (chunk) => {
      state.flushes++;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as { port: number }).port;
  state.close = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  return state;
}
