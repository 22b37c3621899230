import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import {
  adopt,
  clientOf,
  drizzleOn,
  hold,
  holds,
  isServerError,
  letGo,
  type PgConnection,
  type PgQuery,
  PINNED_VERSIONS,
  preparedQuery,
  rawClient,
  send,
  sendBegin,
} from "../../src/db/driver-internals.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { eventually } from "../support/eventually.ts";
import { ROOT } from "../support/process.ts";
import { within } from "../support/within.ts";

// The contract between src/db/driver-internals.ts and the postgres.js and drizzle-orm it was
// written against: each internal the adapter touches, checked to exist and to behave as relied
// on, so that an upgrade (or a lost patch) fails here rather than as a hung transaction.

const json = (path: string) => JSON.parse(readFileSync(join(ROOT, path), "utf8")) as Record<string, unknown>;

describe("versions", () => {
  it("installs exactly the pinned postgres and drizzle-orm, and pins them without a range", () => {
    const manifest = json("package.json") as { dependencies: Record<string, string>; patchedDependencies?: Record<string, string> };
    for (const [name, version] of Object.entries(PINNED_VERSIONS)) {
      expect(manifest.dependencies[name]).toBe(version);
      expect(json(`node_modules/${name}/package.json`).version).toBe(version);
    }
    expect(manifest.patchedDependencies?.[`postgres@${PINNED_VERSIONS.postgres}`]).toBe(`patches/postgres@${PINNED_VERSIONS.postgres}.patch`);
  });

  it("has every line the postgres.js patch adds in the installed code (both builds)", () => {
    const patch = readFileSync(join(ROOT, `patches/postgres@${PINNED_VERSIONS.postgres}.patch`), "utf8");
    const added = new Map<string, string[]>();
    let file = "";
    for (const line of patch.split("\n")) {
      if (line.startsWith("+++ b/")) added.set((file = line.slice(6)), []);
      else if (line.startsWith("+") && !line.startsWith("+++") && line.slice(1).trim()) added.get(file)!.push(line.slice(1));
    }
    expect([...added.keys()].sort()).toEqual(["cjs/src/connection.js", "src/connection.js"]);
    for (const [path, lines] of added) {
      const installed = readFileSync(join(ROOT, "node_modules/postgres", path), "utf8");
      for (const line of lines) expect(installed).toContain(line);
    }
  });
});

describe("postgres.js", () => {
  let tdb: TestDatabase;
  let pool: postgres.Sql;
  let admin: postgres.Sql;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    pool = postgres(tdb.url, { max: 1, onnotice: () => {} });
    admin = postgres(tdb.url, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await pool.end({ timeout: 1 });
    await admin.end({ timeout: 1 });
    await tdb.drop();
  });

  /** held sends BEGIN through the pool with `sendBegin` and holds its connection, as the runner does; `state.idle` counts onIdle calls. */
  async function held() {
    const state = { idle: 0, closed: [] as Error[] };
    const onIdle = () => {
      state.idle++;
    };
    const onClose = (err: Error) => state.closed.push(err);
    let connection: PgConnection | undefined;
    await sendBegin(pool, "begin", (c) => {
      connection = c;
      hold(c, onIdle, onClose);
    });
    expect(connection).toBeDefined();
    return { c: connection!, onIdle, onClose, state };
  }
  /** on routes a new query to `c` through `send`, as the runner does. */
  const on = (c: PgConnection, text: string, params: unknown[] = []) => {
    const q = pool.unsafe(text, params as never) as unknown as PgQuery;
    return adopt(q, (query) => void send(c, query));
  };

  it("starts a query only when it is awaited, a microtask later, through its replaceable handler, once", async () => {
    const q = pool.unsafe("select 1 as one") as unknown as PgQuery;
    expect(typeof q.handler).toBe("function");
    expect(typeof q.reject).toBe("function");
    const original = q.handler;
    const handled: PgQuery[] = [];
    const errors: unknown[] = [];
    const handler = Object.assign(
      (query: PgQuery) => {
        handled.push(query);
        original(query);
      },
      { onError: (e: unknown) => errors.push(e) },
    );
    adopt(q, handler);
    const first = q.then((rows) => rows);
    expect(handled).toEqual([]); // not synchronously
    const [a, b] = await Promise.all([first, q]);
    expect(handled).toEqual([q]);
    expect(a).toEqual(b);
    // adopt's onError sees what postgres.js rejects the query with (as a method call).
    const failing = adopt(pool.unsafe("select 1/0") as unknown as PgQuery, handler);
    const err = await failing.catch((e: unknown) => e);
    expect(errors).toEqual([err]);
    expect(isServerError(err)).toBe(true);
    expect(isServerError(new Error("x"))).toBe(false);
  });

  it("hands the connection a query is written on to onexecute, holds it, and gives it back once Postgres reports it idle", async () => {
    const { c, onIdle, onClose, state } = await held();
    expect(typeof c.execute).toBe("function");
    expect(holds(c, onIdle)).toBe(true);
    // Held: a pool query waits, even though this pool has only this connection.
    let plainDone = false;
    const plain = pool`select 'plain' as x`.then((r) => {
      plainDone = true;
      return r;
    });
    expect(state.idle).toBeGreaterThan(0); // called with nothing in flight, inside the transaction
    const [row] = await on(c, "select $1::int as n", [7]);
    expect(row).toEqual({ n: 7 });
    expect(plainDone).toBe(false);
    await on(c, "commit");
    // After COMMIT Postgres reports the connection idle: postgres.js clears `reserved` and the pool has it again.
    expect(holds(c, onIdle)).toBe(false);
    expect(await within(plain, 2_000, "the pool query")).toEqual([{ x: "plain" }] as never);
    letGo(c, onClose);
    expect(c.onclose).toBe(null);
  });

  it("calls onexecute even for a BEGIN the pool pipelines 100 deep, so the connection is held, not back in the pool inside a transaction (patch)", async () => {
    await pool`select 1`; // the pool's one connection open and idle
    // Pipelined on it: the first query is sent, 99 wait behind it, and BEGIN makes the hundredth waiting.
    const flood = Array.from({ length: 100 }, () => pool`select 1 as one`.then((r) => r));
    let connection: PgConnection | undefined;
    const onIdle = () => {};
    const deep = sendBegin(pool, "begin", (c) => {
      connection = c;
      hold(c, onIdle, () => {});
    });
    await within(Promise.all([deep, ...flood]), 5_000, "the flood and BEGIN");
    expect(connection).toBeDefined();
    expect(holds(connection!, onIdle)).toBe(true);
    await on(connection!, "rollback");
    expect(await within(pool`select 'back' as x`, 2_000, "a pool query")).toEqual([{ x: "back" }] as never);
  });

  it("returns false from execute when a query must wait (a prepared statement's first use), and pipelines otherwise", async () => {
    const { c } = await held();
    const results: boolean[] = [];
    const sending = (query: PgQuery) => void results.push(send(c, query));
    await adopt(pool.unsafe("select $1::int as n", [1], { prepare: true }) as unknown as PgQuery, sending);
    await adopt(pool.unsafe("select $1::int as n", [2], { prepare: true }) as unknown as PgQuery, sending);
    // The first use is described first (Parse/Describe, then Bind once the reply came); then it pipelines.
    expect(results).toEqual([false, true]);
    await on(c, "rollback");
  });

  it("rejects only a query refused while building, pipelined behind another, and keeps the connection in step (patch)", async () => {
    const { c } = await held();
    const slow = on(c, "select pg_sleep(0.2)::text as slept");
    const refused = on(c, "select $1::text", [undefined]);
    const after = on(c, "select 'after' as x");
    const [s, r, a] = await within(Promise.allSettled([slow, refused, after]), 5_000, "the pipelined queries");
    expect(s.status).toBe("fulfilled");
    expect(r.status === "rejected" && (r.reason as { code?: string }).code).toBe("UNDEFINED_VALUE");
    expect(a.status === "fulfilled" && a.value).toEqual([{ x: "after" }] as never);
    await on(c, "rollback");
  });

  it("calls onclose after clearing reserved when a held connection's backend is terminated, and the next session gets no stale error (patch)", async () => {
    const { c, onIdle, state } = await held();
    const [{ pid }] = (await on(c, "select pg_backend_pid() as pid")) as unknown as [{ pid: number }];
    const running = on(c, "select pg_sleep(5)").catch((e: unknown) => e); // sent now
    await eventually(async () => (await admin`select count(*)::int as n from pg_stat_activity where pid = ${pid} and state = 'active'`)[0]!.n === 1);
    await admin`select pg_terminate_backend(${pid})`;
    const err = await within(running, 5_000, "the killed query");
    expect((err as { code?: string }).code).toBe("CONNECTION_CLOSED");
    await eventually(() => state.closed.length === 1);
    expect(holds(c, onIdle)).toBe(false);
    // Postgres's FATAL 57P01 was for the old session; the reconnected one must not report it.
    expect(await within(pool`select 'fresh' as x`, 5_000, "the next query")).toEqual([{ x: "fresh" }] as never);
  });
});

describe("drizzle-orm", () => {
  /** fakeClient records what drizzle asks of a postgres.js client. */
  function fakeClient(calls: string[]) {
    const result = Object.assign([], { count: 0, command: "SELECT" });
    const client = {
      options: { parsers: {}, serializers: {} },
      unsafe: (text: string, params: unknown[], opts: { prepare?: boolean }) => {
        calls.push(`unsafe ${text} ${JSON.stringify(params)} prepare=${opts?.prepare}`);
        return Object.assign(Promise.resolve(result), { values: () => Promise.resolve([]) });
      },
      savepoint: async (cb: (c: unknown) => unknown) => {
        calls.push("savepoint");
        return cb(client);
      },
    };
    return client;
  }

  it("runs db.transaction through client.begin(cb), nested transactions through client.savepoint(cb), statements through client.unsafe", async () => {
    const calls: string[] = [];
    const txClient = fakeClient(calls);
    let seen: unknown;
    const begin = async (cb: (client: unknown) => unknown) => {
      calls.push("begin");
      return cb(txClient);
    };
    const pool = fakeClient(calls) as unknown as postgres.Sql;
    const db = drizzleOn(pool, begin);
    expect(rawClient(db)).toBe(pool);
    const result = await db.transaction(
      async (tx) => {
        seen = clientOf(tx);
        await tx.execute(sql`select ${1}`);
        await tx.transaction(async (inner) => {
          expect(clientOf(inner)).toBe(txClient);
          await inner.execute(sql`select 2`);
        });
        return "done";
      },
      { isolationLevel: "serializable" },
    );
    expect(result).toBe("done");
    expect(seen).toBe(txClient);
    expect(calls).toEqual([
      "begin",
      "unsafe set transaction isolation level serializable [] prepare=false",
      "unsafe select $1 [1] prepare=false",
      "savepoint",
      "unsafe select 2 [] prepare=false",
    ]);
  });

  it("runs a named prepared statement through session.prepareQuery", async () => {
    const calls: string[] = [];
    const db = drizzleOn(fakeClient(calls) as unknown as postgres.Sql, () => {});
    await preparedQuery(db, { sql: "select $1", params: [3] }, "contract_named");
    expect(calls).toEqual(["unsafe select $1 [3] prepare=true"]);
  });
});
