import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { type Order, Shop } from "../support/commerce.ts";
import { eventually } from "../support/eventually.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
let shop: Shop;
beforeAll(async () => {
  s = await startTestServer({ DATABASE_POOL_MAX: "10" });
  shop = Shop.listen(s);
});
afterAll(() => s.close());

describe("200 simultaneous orders for a product with 50 in stock", () => {
  it("confirm exactly 50 and cancel 150 for insufficient stock; stock, reservations and payments agree; every order ends final", async () => {
    const admin = await s.adminToken();
    const customers = await Promise.all(Array.from({ length: 4 }, () => s.register()));
    const p = await shop.newProduct(admin, 50, 700, "Hot item");
    const placed = await Promise.all(
      Array.from({ length: 200 }, (_, i) => shop.placeOk(customers[i % customers.length]!.token, [{ productId: p, quantity: 1 }])),
    );
    expect(new Set(placed.map((o) => o.id)).size).toBe(200);

    const ids = placed.map((o) => o.id);
    const final = await eventually(async () => {
      const rows = await s.database.sql<{ id: string; status: string; state: Order }[]>`
        select id, status, state from orders.order_views where id = any(${ids}::uuid[])`;
      expect(rows.filter((r) => r.status === "PENDING")).toHaveLength(0);
      expect(rows).toHaveLength(200);
      return rows;
    }, 45_000);
    const confirmed = final.filter((r) => r.status === "CONFIRMED");
    const cancelled = final.filter((r) => r.status === "CANCELLED");
    expect(confirmed).toHaveLength(50);
    expect(cancelled).toHaveLength(150);
    for (const c of cancelled) expect(c.state.cancellationReason).toBe("out of stock: Hot item (requested 1, available 0)");

    await eventually(async () => {
      expect(await shop.product(p)).toMatchObject({ stock: 0, reserved: 0, available: 0 });
      const reservations = await s.database.sql<{ status: string; n: number }[]>`
        select status, count(*)::int as n from inventory.reservations where order_id = any(${ids}::uuid[]) group by status order by status`;
      expect([...reservations]).toEqual([
        { status: "committed", n: 50 },
        { status: "failed", n: 150 },
      ]);
      const payments = await s.database.sql<{ status: string; n: number; cents: number }[]>`
        select status, count(*)::int as n, sum(amount_cents)::int as cents from payments.payments where order_id = any(${ids}::uuid[]) group by status order by status`;
      expect([...payments]).toEqual([
        { status: "processed", n: 50, cents: 50 * 700 },
        { status: "voided", n: 150, cents: 150 * 700 },
      ]);
      const sagas = await s.database.sql<{ status: string; n: number }[]>`
        select status, count(*)::int as n from orders.sagas where order_id = any(${ids}::uuid[]) group by status order by status`;
      expect([...sagas]).toEqual([
        { status: "CANCELLED", n: 150 },
        { status: "COMPLETED", n: 50 },
      ]);
    }, 20_000);
    // Money moved only for the confirmed orders, once each.
    const confirmedIds = new Set(confirmed.map((c) => c.id));
    const charged = await s.database.sql<{ subject: string }[]>`
      select subject from outbox.events where type = 'payment.processed' and subject = any(${ids}::text[])`;
    expect(charged).toHaveLength(50);
    for (const c of charged) expect(confirmedIds.has(c.subject)).toBe(true);
  }, 60_000);
});

describe("simultaneous orders over several products", () => {
  it("never deadlock inventory's partitions (each batch locks its products in one order) and all confirm", async () => {
    const admin = await s.adminToken();
    const customer = await s.register();
    const products = await Promise.all(Array.from({ length: 6 }, (_, i) => shop.newProduct(admin, 1000, 100 + i, `Part ${i}`)));
    const pick = () => products[Math.floor(Math.random() * products.length)]!;
    const placed = await Promise.all(
      Array.from({ length: 160 }, () => {
        const a = pick();
        const b = pick();
        return shop.placeOk(
          customer.token,
          a === b
            ? [{ productId: a, quantity: 1 }]
            : [
                { productId: a, quantity: 1 },
                { productId: b, quantity: 2 },
              ],
        );
      }),
    );
    const ids = placed.map((o) => o.id);
    await eventually(async () => {
      const [row] = await s.database.sql<
        { n: number }[]
      >`select count(*)::int as n from orders.sagas where order_id = any(${ids}::uuid[]) and status = 'COMPLETED'`;
      expect(row!.n).toBe(160);
    }, 45_000);
    const errors = await s.database.sql<{ last_error: string }[]>`
      select last_error from outbox.subscriptions where name = 'inventory.reservations' and last_error is not null`;
    expect(errors.map((e) => e.last_error)).toEqual([]);
    const ordered = placed.reduce((n, o) => n + (o as unknown as { items: { quantity: number }[] }).items.reduce((m, i) => m + i.quantity, 0), 0);
    await eventually(async () => {
      const [units] = await s.database.sql<{ sold: number; reserved: number }[]>`
        select sum(1000 - stock)::int as sold, sum(reserved)::int as reserved from inventory.products where id = any(${products}::uuid[])`;
      expect(units).toEqual({ sold: ordered, reserved: 0 });
    }, 15_000);
  }, 60_000);
});
