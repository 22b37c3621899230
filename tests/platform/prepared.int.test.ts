import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { eq, sql } from "drizzle-orm";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import { isUniqueViolation } from "../../outbox/store.ts";
import { connectDatabase, type Database } from "../../src/db/client.ts";
import { prepared } from "../../src/db/prepared.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { pgCountingProxy } from "../support/tcp-proxy.ts";

const items = pgTable("pq_items", { id: integer("id").primaryKey(), name: text("name").notNull().unique() });

const itemById = prepared("pq_item_by_id", ["id"], (db, $) => db.select().from(items).where(eq(items.id, $.id)));
const insertItem = prepared("pq_insert_item", ["id", "name"], (db, $) => db.insert(items).values({ id: $.id, name: $.name }).returning());
const namesLike = prepared("pq_names_like", ["prefix"], (_, $) => sql`select name from pq_items where name like ${$.prefix} || '%' order by name`).returns<{
  name: string;
}>();

let tdb: TestDatabase;
let other: TestDatabase;
let d: Database;
let e: Database;

beforeAll(async () => {
  [tdb, other] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  d = connectDatabase(tdb.url, { max: 3 });
  e = connectDatabase(other.url, { max: 2 });
  for (const x of [d, e]) await x.sql`create table pq_items (id int primary key, name text not null unique)`;
});
afterAll(async () => {
  await Promise.all([d.close(), e.close()]);
  await Promise.all([tdb.drop(), other.drop()]);
});

describe("prepared", () => {
  it("runs a builder query on the pool with its placeholders' values and maps rows as the builder does", async () => {
    const [row] = await insertItem.execute(d.db, { id: 1, name: "pool-one" });
    expect(row).toEqual({ id: 1, name: "pool-one" });
    expect(await itemById.execute(d.db, { id: 1 })).toEqual([{ id: 1, name: "pool-one" }]);
    expect(await itemById.execute(d.db, { id: 999 })).toEqual([]);
  });

  it("runs inside a transaction, on its connection: it sees the transaction's own writes and rolls back with it", async () => {
    const boom = new Error("boom");
    await expect(
      d.db.transaction(async (tx) => {
        await insertItem.execute(tx, { id: 2, name: "tx-two" });
        expect(await itemById.execute(tx, { id: 2 })).toEqual([{ id: 2, name: "tx-two" }]);
        // The pool is another connection: the uncommitted row is not there.
        expect(await itemById.execute(d.db, { id: 2 })).toEqual([]);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await itemById.execute(d.db, { id: 2 })).toEqual([]);
  });

  it("built first inside a transaction, still runs on the pool once that transaction has ended", async () => {
    const byName = prepared("pq_item_by_name", ["name"], (db, $) => db.select().from(items).where(eq(items.name, $.name)));
    await d.db.transaction(async (tx) => {
      await insertItem.execute(tx, { id: 3, name: "built-in-tx" });
      expect(await byName.execute(tx, { name: "built-in-tx" })).toHaveLength(1);
    });
    // Bound to the transaction's handle, this would be refused with TransactionFinishedError.
    expect(await byName.execute(d.db, { name: "built-in-tx" })).toEqual([{ id: 3, name: "built-in-tx" }]);
  });

  it("runs in nested transactions (savepoints) too", async () => {
    await d.db.transaction(async (tx) => {
      await tx.transaction(async (inner) => {
        await insertItem.execute(inner, { id: 4, name: "savepoint-four" });
      });
      expect(await itemById.execute(tx, { id: 4 })).toHaveLength(1);
    });
    expect(await itemById.execute(d.db, { id: 4 })).toHaveLength(1);
  });

  it("serves several databases at once, each through its own pool", async () => {
    await insertItem.execute(e.db, { id: 10, name: "other-ten" });
    expect(await itemById.execute(e.db, { id: 10 })).toEqual([{ id: 10, name: "other-ten" }]);
    expect(await itemById.execute(d.db, { id: 10 })).toEqual([]);
  });

  it("runs a raw sql statement and returns its rows as objects", async () => {
    await insertItem.execute(d.db, { id: 20, name: "raw-b" });
    await insertItem.execute(d.db, { id: 21, name: "raw-a" });
    expect(await namesLike.execute(d.db, { prefix: "raw-" })).toEqual([{ name: "raw-a" }, { name: "raw-b" }]);
  });

  it("fails as the builder fails: a unique violation is told by isUniqueViolation", async () => {
    await insertItem.execute(d.db, { id: 30, name: "dup" });
    const err = await insertItem.execute(d.db, { id: 31, name: "dup" }).catch((x: unknown) => x);
    expect(isUniqueViolation(err, "pq_items_name_key")).toBe(true);
  });

  it("refuses to run with a placeholder's value missing", async () => {
    const missing = itemById.execute(d.db, {} as { id: number });
    await expect(missing).rejects.toThrow('No value for placeholder "id"');
  });

  it("after its first run on a connection, sends each execution in one round trip and renders no SQL", async () => {
    const proxy = await pgCountingProxy(tdb.url);
    const viaProxy = connectDatabase(proxy.url(tdb.url), { max: 1 });
    const dialect = (viaProxy.db as unknown as { _: { session: { dialect: { sqlToQuery: (...a: unknown[]) => unknown } } } })._.session.dialect;
    const render = dialect.sqlToQuery.bind(dialect);
    let renders = 0;
    dialect.sqlToQuery = (...a: unknown[]) => {
      renders++;
      return render(...a);
    };
    try {
      await itemById.execute(viaProxy.db, { id: 1 }); // first run: built, then described and prepared on the connection
      expect(renders).toBe(1);
      proxy.reset();
      for (let id = 1; id <= 5; id++) await itemById.execute(viaProxy.db, { id });
      expect(proxy.flushes).toBe(5);
      expect(proxy.statements()).toBe(5);
      expect(proxy.messages.P ?? 0).toBe(0); // no Parse: the server kept the statement
      expect(renders).toBe(1);
      // The same statement inside transactions: no building either, and it rides with BEGIN.
      proxy.reset();
      await viaProxy.db.transaction(async (tx) => {
        await itemById.execute(tx, { id: 1 });
      });
      expect(proxy.flushes).toBe(2); // BEGIN + SELECT, then COMMIT
      expect(renders).toBe(1);
    } finally {
      await viaProxy.close();
      proxy.close();
    }
  });
});
