import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import { InventoryReleased, InventoryReservationFailed, InventoryReserved } from "../../../modules/inventory/events.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated, OrderPaymentTimedOut } from "../../../modules/orders/events.ts";
import { PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided } from "../../../modules/payments/events.ts";
import type { AnyEventDefinition } from "../../../src/platform.ts";
import { Shop } from "../../support/commerce.ts";
import { eventually } from "../../support/eventually.ts";
import { handledCount } from "../../support/handled.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

// The flows cross several subscriptions; on a loaded machine (or with a long transaction elsewhere
// on the server holding the log's read horizon) they take seconds, so waits are generous.
setDefaultTimeout(60_000);

let s: TestServer;
let shop: Shop;
let admin: string;
let alice: { id: string; token: string };
beforeAll(async () => {
  s = await startTestServer();
  shop = new Shop(s, s.listen());
  admin = await s.adminToken();
  alice = await s.register();
});
afterAll(() => s.close());

const defs: Record<string, AnyEventDefinition> = Object.fromEntries(
  [
    OrderCreated,
    OrderConfirmed,
    OrderCancelled,
    InventoryReserved,
    InventoryReservationFailed,
    InventoryReleased,
    PaymentProcessed,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
  ].map((d) => [d.type, d]),
);

/** redeliver appends a copy of every event of the order the saga consumed, and waits until the saga handled each twice. */
async function redeliverAll(orderId: string) {
  const rows = await s.database.sql<{ type: string; data: never }[]>`
    select type, data from outbox.events where subject = ${orderId} and type = any(${Object.keys(defs)}::text[]) order by position`;
  await s.database.db.transaction((tx) =>
    s.outbox.appender.append(
      tx,
      rows.map((r) => defs[r.type]!.with(r.data as never, { subject: orderId }) as never),
    ),
  );
  for (const r of rows) await eventually(async () => expect(await handledCount(s.database, "orders.saga", r.type, orderId)).toBe(2), 10_000);
  return rows.map((r) => r.type);
}
const snapshot = async (orderId: string) => ({
  saga: (await s.database.sql`select status, state from orders.sagas where order_id = ${orderId}`)[0],
  order: await shop.order(orderId, admin),
  events: (await s.database.sql<{ type: string }[]>`select type from outbox.events where subject = ${orderId} order by position`).map((e) => e.type),
  deadlines: (await s.database.sql<{ n: number }[]>`select count(*)::int as n from orders.saga_deadlines where order_id = ${orderId}`)[0]!.n,
});

describe("the saga delivered every event twice", () => {
  for (const [label, method, end, status] of [
    ["a confirmed order", "pm_card_visa", "COMPLETED", "CONFIRMED"],
    ["a declined card", "pm_card_declined", "CANCELLED", "CANCELLED"],
  ] as const) {
    it(`changes nothing more for ${label}: no second confirmation or cancellation, no new deadline`, async () => {
      const p = await shop.newProduct(admin, 5);
      const order = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }], method);
      await eventually(async () => expect((await shop.saga(order.id, admin)).status).toBe(end), 15_000);
      // The flow's last effect (the stock committed or released) is in before the copies go out.
      await eventually(async () =>
        expect(await shop.product(p)).toMatchObject(method === "pm_card_visa" ? { stock: 4, reserved: 0 } : { stock: 5, reserved: 0 }),
      );
      const before = await snapshot(order.id);
      expect(before.order.status).toBe(status);
      const types = await redeliverAll(order.id);
      expect(types).toContain(`payment.${method === "pm_card_visa" ? "processed" : "failed"}`);
      await Bun.sleep(200);
      const after = await snapshot(order.id);
      expect(after.saga).toEqual(before.saga);
      expect(after.order.version).toBe(before.order.version);
      expect(after.deadlines).toBe(0);
      // The copies are the only new events: the saga appended nothing in answer to them.
      expect(after.events.length - before.events.length).toBe(types.length);
      expect(await shop.product(p)).toMatchObject(method === "pm_card_visa" ? { stock: 4, reserved: 0 } : { stock: 5, reserved: 0 });
    });
  }

  it("ignores a payment timeout that arrives after the payment was answered, and a repeated one", async () => {
    const p = await shop.newProduct(admin, 5);
    const order = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    await eventually(async () => expect((await shop.saga(order.id, admin)).status).toBe("COMPLETED"), 15_000);
    const before = await snapshot(order.id);
    const late = OrderPaymentTimedOut.with({ orderId: order.id, dueAt: new Date().toISOString(), timeoutMs: 30_000 }, { subject: order.id });
    await s.database.db.transaction((tx) => s.outbox.appender.append(tx, [late, OrderPaymentTimedOut.with(late.data, { subject: order.id })]));
    await eventually(async () => expect(await handledCount(s.database, "orders.saga", "order-saga.payment_timed_out", order.id)).toBe(2), 10_000);
    const after = await snapshot(order.id);
    expect(after.saga).toEqual(before.saga);
    expect(after.order).toEqual(before.order);
  });
});
