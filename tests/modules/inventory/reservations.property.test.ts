import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import fc from "fast-check";
import { commitStock, releaseStock, reserveStock } from "../../../modules/inventory/reservations.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

// The reservation use cases run straight against Postgres, many transactions at once, in the
// interleavings the pool gives them. Whatever the orders and their order, stock never goes
// negative, nothing is oversold, no transaction deadlocks, and the counts match the rows.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api", DATABASE_POOL_MAX: "8" });
});
afterAll(() => s.close());

const tx = <T>(f: Parameters<typeof s.database.db.transaction<T>>[0]) => s.database.db.transaction(f);

async function makeProducts(stocks: number[]): Promise<string[]> {
  const ids = stocks.map(() => randomUUIDv7());
  await s.database.sql`
    insert into inventory.products (id, sku, name, category, price_cents, cost_cents, stock)
    select id, 'prop-' || id, 'P', 'prop', 100, 50, stock from unnest(${ids}::uuid[], ${stocks}::int[]) as u(id, stock)`;
  return ids;
}

interface Counts {
  id: string;
  stock: number;
  reserved: number;
}

describe("reservations under concurrency", () => {
  it("keep stock non-negative and reserved equal to the open reservations, for any orders in any interleaving", async () => {
    const deadline = Date.now() + 60_000;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 2, maxLength: 4 }),
        fc.array(
          fc.record({
            lines: fc.array(fc.record({ product: fc.nat(), quantity: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 3 }),
            then: fc.constantFrom("cancel", "confirm", "confirm-then-cancel", "keep"),
          }),
          { minLength: 1, maxLength: 16 },
        ),
        async (stocks, orders) => {
          if (Date.now() > deadline) return; // bounded in time on a loaded machine
          const ids = await makeProducts(stocks);
          const placed = orders.map((o) => ({
            orderId: randomUUIDv7(),
            lines: o.lines.map((l) => ({ productId: ids[l.product % ids.length]!, quantity: l.quantity })),
            then: o.then,
          }));
          // Every order reserves at once; then each follows its path, again all at once, with a
          // second delivery of every event racing the first.
          const outcomes = await Promise.all(placed.map((o) => tx((t) => reserveStock(t, s.outbox.appender, o.orderId, o.lines))));
          await Promise.all(placed.map((o) => tx((t) => reserveStock(t, s.outbox.appender, o.orderId, o.lines))));
          await Promise.all(
            placed.flatMap((o) => {
              const step = async () => {
                if (o.then === "confirm" || o.then === "confirm-then-cancel") await tx((t) => commitStock(t, s.outbox.appender, o.orderId));
                if (o.then === "cancel" || o.then === "confirm-then-cancel") await tx((t) => releaseStock(t, s.outbox.appender, o.orderId));
              };
              return [step(), step()];
            }),
          );

          const counts = await s.database.sql<Counts[]>`select id, stock, reserved from inventory.products where id = any(${ids}::uuid[])`;
          const rows = await s.database.sql<{ order_id: string; status: string; lines: { productId: string; quantity: number }[] }[]>`
            select order_id, status, lines from inventory.reservations where order_id = any(${placed.map((o) => o.orderId)}::uuid[])`;
          expect(rows).toHaveLength(placed.length);
          const sum = (status: string, id: string) =>
            rows.filter((r) => r.status === status).reduce((n, r) => n + r.lines.filter((l) => l.productId === id).reduce((m, l) => m + l.quantity, 0), 0);
          for (const c of counts) {
            const initial = stocks[ids.indexOf(c.id)]!;
            expect(c.stock).toBeGreaterThanOrEqual(0);
            expect(c.reserved).toBeGreaterThanOrEqual(0);
            expect(c.reserved).toBeLessThanOrEqual(c.stock);
            expect(c.reserved).toBe(sum("reserved", c.id));
            expect(c.stock).toBe(initial - sum("committed", c.id));
          }
          // Exactly the reserved orders got a reservation; a failed one never changes later.
          for (const [i, o] of placed.entries()) {
            const row = rows.find((r) => r.order_id === o.orderId)!;
            if (outcomes[i] !== "reserved") expect(row.status).toBe("failed");
            else expect(row.status).toBe({ cancel: "released", confirm: "committed", "confirm-then-cancel": "released", keep: "reserved" }[o.then]);
          }
          const [events] = await s.database.sql<{ reserved: number; released: number; committed: number }[]>`
            select count(*) filter (where type = 'inventory.reserved')::int as reserved,
                   count(*) filter (where type = 'inventory.released')::int as released,
                   count(*) filter (where type = 'inventory.committed')::int as committed
            from outbox.events where subject = any(${placed.map((o) => o.orderId)}::text[])`;
          const ok = placed.filter((_, i) => outcomes[i] === "reserved");
          expect(events).toEqual({
            reserved: ok.length,
            released: ok.filter((o) => o.then === "cancel" || o.then === "confirm-then-cancel").length,
            committed: ok.filter((o) => o.then === "confirm" || o.then === "confirm-then-cancel").length,
          });
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it("lets exactly the stock through when 60 orders race for one product with 25 units", async () => {
    const [id] = await makeProducts([25]);
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, () => tx((t) => reserveStock(t, s.outbox.appender, randomUUIDv7(), [{ productId: id!, quantity: 1 }]))),
    );
    expect(outcomes.filter((o) => o === "reserved")).toHaveLength(25);
    expect(outcomes.filter((o) => o === "insufficient_stock")).toHaveLength(35);
    const [p] = await s.database.sql<Counts[]>`select id, stock, reserved from inventory.products where id = ${id!}`;
    expect(p).toMatchObject({ stock: 25, reserved: 25 });
  }, 60_000);
});
