import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import { InventoryReserved } from "../../../modules/inventory/events.ts";
import { OrderCancelled, OrderCreated } from "../../../modules/orders/events.ts";
import { createSimulatedProvider } from "../../../modules/payments/index.ts";
import { bounded, CALL_TIMEOUT } from "../../../modules/payments/provider.ts";
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

/** redeliver appends a copy of an order's event of `type` (a redelivery as the subscription sees it) and waits until `subscription` handled both. */
async function redeliver(subscription: string, type: string, orderId: string) {
  const [row] = await s.database.sql<{ data: never }[]>`select data from outbox.events where subject = ${orderId} and type = ${type} order by position limit 1`;
  const def = { "order.created": OrderCreated, "inventory.reserved": InventoryReserved, "order.cancelled": OrderCancelled }[type]!;
  await s.database.db.transaction((tx) => s.outbox.appender.append(tx, [def.with(row!.data, { subject: orderId })]));
  await eventually(async () => expect(await handledCount(s.database, subscription, type, orderId)).toBe(2), 10_000);
}
const count = async (orderId: string, type: string) =>
  (await s.database.sql<{ n: number }[]>`select count(*)::int as n from outbox.events where subject = ${orderId} and type = ${type}`)[0]!.n;
const paymentRow = async (orderId: string) =>
  (await s.database.sql`select status, charge_id, refund_id, amount_cents from payments.payments where order_id = ${orderId}`)[0];

describe("the simulated processor", () => {
  it("answers by payment method, and a repeated idempotency key gets the first answer without moving money again", async () => {
    const provider = createSimulatedProvider();
    const ok = await provider.charge({ idempotencyKey: "k1", amountCents: 500, currency: "USD", paymentMethod: "pm_card_visa" });
    expect(ok.status).toBe("succeeded");
    expect(await provider.charge({ idempotencyKey: "k1", amountCents: 500, currency: "USD", paymentMethod: "pm_card_visa" })).toEqual(ok);
    expect(provider.ledger.charges).toHaveLength(1);
    expect(await provider.charge({ idempotencyKey: "k2", amountCents: 1, currency: "USD", paymentMethod: "pm_card_declined" })).toMatchObject({
      status: "failed",
      reason: "card_declined",
    });
    expect(await provider.charge({ idempotencyKey: "k3", amountCents: 1, currency: "USD", paymentMethod: "pm_card_insufficient_funds" })).toMatchObject({
      status: "failed",
      reason: "insufficient_funds",
    });
    expect(await provider.charge({ idempotencyKey: "k4", amountCents: 1, currency: "USD", paymentMethod: "tok_whatever" })).toMatchObject({
      reason: "invalid_payment_method",
    });
    const chargeId = ok.status === "succeeded" ? ok.chargeId : "";
    const refund = await provider.refund({ idempotencyKey: "r1", chargeId, amountCents: 500 });
    expect(await provider.refund({ idempotencyKey: "r1", chargeId, amountCents: 500 })).toEqual(refund);
    expect(provider.ledger.refunds).toHaveLength(1);
    expect(await provider.refund({ idempotencyKey: "r2", chargeId, amountCents: 501 })).toMatchObject({ status: "failed" });
  });

  it("never answers pm_card_timeout; a bounded call gives up after its deadline", async () => {
    const provider = createSimulatedProvider();
    const started = performance.now();
    const answer = await bounded(100, (signal) =>
      provider.charge({ idempotencyKey: "t", amountCents: 1, currency: "USD", paymentMethod: "pm_card_timeout" }, signal),
    );
    expect(answer).toBe(CALL_TIMEOUT);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(provider.ledger.charges).toHaveLength(0);
  });
});

describe("payments delivered twice", () => {
  it("open one payment, charge once and refund once however often order.created, inventory.reserved and order.cancelled arrive", async () => {
    const p = await shop.newProduct(admin, 10, 999);
    const order = await shop.placeOk(alice.token, [{ productId: p, quantity: 2 }]);
    await eventually(async () => expect((await shop.order(order.id, admin)).status).toBe("CONFIRMED"), 15_000);
    const charged = await paymentRow(order.id);
    expect(charged).toMatchObject({ status: "processed", amount_cents: 1998 });

    await redeliver("payments.charges", "order.created", order.id);
    await redeliver("payments.charges", "inventory.reserved", order.id);
    expect(await paymentRow(order.id)).toEqual(charged!);
    expect(await count(order.id, "payment.processed")).toBe(1);
    expect((await s.database.sql<{ n: number }[]>`select count(*)::int as n from payments.payments where order_id = ${order.id}`)[0]!.n).toBe(1);

    expect((await shop.post(`/api/v1/orders/${order.id}/cancel`, alice.token, { reason: "no longer needed" })).status).toBe(200);
    await eventually(async () => expect((await paymentRow(order.id))!.status).toBe("refunded"), 10_000);
    const refunded = await paymentRow(order.id);
    await redeliver("payments.charges", "order.cancelled", order.id);
    expect(await paymentRow(order.id)).toEqual(refunded!);
    expect(await count(order.id, "payment.refunded")).toBe(1);
  });

  it("charge nothing when the cancellation arrives before the reservation", async () => {
    const p = await shop.newProduct(admin, 10, 300);
    const order = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }], "pm_card_timeout");
    // Cancelled at once: payments may see the cancellation before inventory's reservation.
    expect((await shop.post(`/api/v1/orders/${order.id}/cancel`, alice.token, { reason: "oops" })).status).toBe(200);
    await eventually(async () => expect((await paymentRow(order.id))!.status).toBe("voided"), 15_000);
    await eventually(async () => expect(await shop.product(p)).toMatchObject({ stock: 10, reserved: 0 }), 10_000);
    expect(await count(order.id, "payment.processed")).toBe(0);
  });
});
