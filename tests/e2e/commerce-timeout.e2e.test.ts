import { afterAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import pino from "pino";
import { loadConfig } from "../../src/config.ts";
import { createServer, type Server } from "../../src/server.ts";
import { Shop, stepOf } from "../support/commerce.ts";
import { eventually } from "../support/eventually.ts";
import { ADMIN, startTestServer, type TestServer } from "../support/server.ts";

// The flows cross several subscriptions; on a loaded machine (or with a long transaction elsewhere
// on the server holding the log's read horizon) they take seconds, so waits are generous.
setDefaultTimeout(60_000);

// The payment timeout, shortened: an unanswered payment fails the order, its deadline survives
// a restart, and with several processes each deadline fires once.
const TIMEOUT = { PAYMENT_TIMEOUT: "1s" };
const servers: { stop(): Promise<void> }[] = [];
let s: TestServer;
afterAll(async () => {
  for (const x of servers.reverse()) await x.stop().catch(() => {});
  await s?.close();
});

/** another starts one more process of the app on the same database (no listener needed for its workers). */
async function another(env: Record<string, string> = {}): Promise<Server> {
  const server = await createServer(
    loadConfig({
      NODE_ENV: "test",
      DATABASE_URL: s.tdb.url,
      LOG_LEVEL: "silent",
      PORT: "0",
      HOST: "127.0.0.1",
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
      WORKER_POLL_MS: "200",
      DATABASE_POOL_MAX: "5",
      ...TIMEOUT,
      ...env,
    }),
    { log: pino({ level: "silent" }) },
  );
  servers.push(server);
  return server;
}

const timedOut = async (orderId: string) =>
  (
    await s.database.sql<{ n: number }[]>`
  select count(*)::int as n from outbox.events where subject = ${orderId} and type = 'order-saga.payment_timed_out'`
  )[0]!.n;

describe("a payment that is never answered", () => {
  it("is treated as failed after PAYMENT_TIMEOUT: the order is cancelled, the stock released, the payment called off", async () => {
    s = await startTestServer(TIMEOUT);
    const shop = Shop.listen(s);
    const admin = await s.adminToken();
    const alice = await s.register();
    const p = await shop.newProduct(admin, 4);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 3 }], "pm_card_timeout");
    const order = await eventually(async () => {
      const o = await shop.order(placed.id, alice.token);
      expect(o.status).toBe("CANCELLED");
      return o;
    }, 30_000);
    expect(order.cancellationReason).toBe("payment not confirmed within 1 s");
    const saga = await eventually(async () => {
      const x = await shop.saga(placed.id, alice.token);
      expect(x.status).toBe("CANCELLED");
      return x;
    }, 30_000);
    expect(stepOf(saga, "processPayment")).toMatchObject({ status: "failed", detail: "no answer from the payment processor within 1 s" });
    expect(stepOf(saga, "releaseInventory").status).toBe("succeeded");
    expect(stepOf(saga, "refundPayment").status).toBe("skipped");
    // The deadline was about a second after the reservation.
    const reserved = Date.parse(stepOf(saga, "reserveInventory").finishedAt!);
    expect(Date.parse(stepOf(saga, "processPayment").finishedAt!) - reserved).toBeGreaterThanOrEqual(1000);
    expect(await shop.product(p)).toMatchObject({ stock: 4, reserved: 0 });
    expect(await shop.payment(placed.id, alice.token)).toMatchObject({ status: "voided", chargeId: null });
    expect(await timedOut(placed.id)).toBe(1);
    const events = await shop.eventsOf(placed.id);
    expect(new Set(events.map((e) => e.correlation_id)).size).toBe(1);
  }, 60_000);

  it("still times out when the process that set the deadline stopped before it was due", async () => {
    // The first server's workers stop; the deadline row stays in Postgres; another process fires it.
    const admin = await s.adminToken();
    const alice = await s.register();
    const p = await s.request("/api/v1/products", {
      method: "POST",
      token: admin,
      json: { sku: `SKU-restart-${Date.now()}`, name: "Clock", category: "t", priceCents: 100, costCents: 1, stock: 2 },
    });
    const productId = ((await p.json()) as { id: string }).id;
    const res = await s.request("/api/v1/orders", {
      method: "POST",
      token: alice.token,
      json: {
        items: [{ productId, quantity: 1 }],
        shippingAddress: { street: "1", city: "c", state: "s", zipCode: "1", country: "US" },
        paymentMethod: "pm_card_timeout",
      },
    });
    const orderId = ((await res.json()) as { id: string }).id;
    await eventually(async () => {
      const [row] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from orders.saga_deadlines where order_id = ${orderId}`;
      expect(row!.n).toBe(1);
    }, 30_000);
    // Stop the workers and the timer of the only process (its pool stays for the test's reads).
    await s.outbox.stop();
    for (const m of s.modules) for (const t of m.background ?? []) await t.stop();
    await Bun.sleep(1200);
    expect(await timedOut(orderId)).toBe(0);
    await another();
    await eventually(
      async () =>
        expect((await s.database.sql<{ status: string }[]>`select status from orders.order_views where id = ${orderId}`)[0]?.status).toBe("CANCELLED"),
      15_000,
    );
    expect(await timedOut(orderId)).toBe(1);
  }, 60_000);

  it("fires each deadline once when several processes run the timer", async () => {
    await another();
    await another();
    const admin = await s.adminToken();
    const alice = await s.register();
    const p = await s.request("/api/v1/products", {
      method: "POST",
      token: admin,
      json: { sku: `SKU-multi-${Date.now()}`, name: "Clock", category: "t", priceCents: 100, costCents: 1, stock: 100 },
    });
    const productId = ((await p.json()) as { id: string }).id;
    const ids = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await s.request("/api/v1/orders", {
          method: "POST",
          token: alice.token,
          json: {
            items: [{ productId, quantity: 1 }],
            shippingAddress: { street: "1", city: "c", state: "s", zipCode: "1", country: "US" },
            paymentMethod: "pm_card_timeout",
          },
        });
        return ((await res.json()) as { id: string }).id;
      }),
    );
    await eventually(async () => {
      const rows = await s.database.sql<{ status: string }[]>`select status from orders.order_views where id = any(${ids}::uuid[])`;
      expect(rows.filter((r) => r.status === "CANCELLED")).toHaveLength(12);
    }, 20_000);
    for (const id of ids) expect(await timedOut(id)).toBe(1);
    await eventually(async () => {
      const [product] = await s.database.sql<{ stock: number; reserved: number }[]>`select stock, reserved from inventory.products where id = ${productId}`;
      expect(product).toEqual({ stock: 100, reserved: 0 });
    }, 30_000);
  }, 60_000);
});
