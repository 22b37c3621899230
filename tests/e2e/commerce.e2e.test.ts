import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import { type Order, Shop, stepOf } from "../support/commerce.ts";
import { eventually } from "../support/eventually.ts";
import { expectProblem } from "../support/http.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// The flows cross several subscriptions; on a loaded machine (or with a long transaction elsewhere
// on the server holding the log's read horizon) they take seconds, so waits are generous.
setDefaultTimeout(60_000);

// The whole shop over real HTTP (a listening server, fetch): orders, inventory, payments and
// the saga between them, with the default 30 s payment timeout.
let s: TestServer;
let shop: Shop;
let admin: string;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
beforeAll(async () => {
  s = await startTestServer();
  shop = Shop.listen(s);
  admin = await s.adminToken();
  alice = await s.register();
  bob = await s.register();
});
afterAll(() => s.close());

const settled = (id: string, status: string) =>
  eventually(async () => {
    const o = await shop.order(id, admin);
    expect(o.status).toBe(status);
    return o;
  }, 30_000);
const sagaEnded = (id: string, status: string) =>
  eventually(async () => {
    const saga = await shop.saga(id, admin);
    expect(saga.status).toBe(status);
    return saga;
  }, 30_000);

describe("the happy path", () => {
  it("reserves, charges the total once, confirms, ships and delivers; every event of the flow shares the order's correlation id", async () => {
    const p = await shop.newProduct(admin, 10, 1250, "Gadget");
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 3 }]);
    expect(placed.status).toBe("PENDING");
    await settled(placed.id, "CONFIRMED");

    const payment = await shop.payment(placed.id, alice.token);
    expect(payment).toMatchObject({ orderId: placed.id, status: "processed", amountCents: 3750, refundId: null, failureReason: null });
    expect(payment.chargeId).toStartWith("ch_");
    await eventually(async () => expect(await shop.product(p)).toMatchObject({ stock: 7, reserved: 0, available: 7 }));

    const saga = await sagaEnded(placed.id, "COMPLETED");
    expect(saga.steps.map((x) => [x.name, x.status])).toEqual([
      ["reserveInventory", "succeeded"],
      ["processPayment", "succeeded"],
      ["confirmOrder", "succeeded"],
      ["notifyCustomer", "succeeded"],
    ]);
    for (const step of saga.steps) expect(Date.parse(step.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(step.startedAt!));
    expect(saga.paymentDueAt).toBeNull();

    const shipped = await shop.post(`/api/v1/orders/${placed.id}/ship`, admin, { trackingNumber: "1Z999", carrier: "UPS" });
    expect(shipped.status).toBe(200);
    expect(await shipped.json()).toMatchObject({ status: "SHIPPED", trackingNumber: "1Z999", carrier: "UPS" });
    const delivered = await shop.post(`/api/v1/orders/${placed.id}/deliver`, admin);
    expect(delivered.status).toBe(200);
    expect(((await delivered.json()) as Order).status).toBe("DELIVERED");

    await eventually(async () => {
      const events = await shop.eventsOf(placed.id);
      const types = events.map((e) => e.type);
      for (const t of [
        "order.created",
        "inventory.reserved",
        "payment.processed",
        "order.confirmed",
        "inventory.committed",
        "order.shipped",
        "order.delivered",
      ])
        expect(types).toContain(t);
      expect(types.filter((t) => t === "payment.processed")).toHaveLength(1);
      expect(new Set(events.map((e) => e.correlation_id)).size).toBe(1);
    });
    // What a notification needs travels on the public events.
    const [shippedEvent] = await s.database.sql<{ data: Record<string, string> }[]>`
      select data from outbox.events where subject = ${placed.id} and type = 'order.shipped'`;
    expect(shippedEvent!.data).toMatchObject({ customerId: alice.id, trackingNumber: "1Z999", carrier: "UPS" });
  });

  it("with Prefer: wait answers 201 with the final order (CONFIRMED, or CANCELLED for a declined card)", async () => {
    const p = await shop.newProduct(admin, 5);
    const ok = await shop.place(alice.token, [{ productId: p, quantity: 1 }], "pm_card_visa", { prefer: "wait=10" });
    expect(ok.status).toBe(201);
    expect(ok.headers.get("preference-applied")).toBe("wait=10");
    expect(((await ok.json()) as Order).status).toBe("CONFIRMED");
    const declined = await shop.place(alice.token, [{ productId: p, quantity: 1 }], "pm_card_declined", { prefer: "wait=10" });
    expect(declined.status).toBe(201);
    expect(await declined.json()).toMatchObject({ status: "CANCELLED", cancellationReason: "payment failed: the card was declined" });
  });
});

describe("compensation", () => {
  it("cancels an order whose card is declined and releases its stock; no money moves", async () => {
    const p = await shop.newProduct(admin, 10);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 4 }], "pm_card_declined");
    const order = await settled(placed.id, "CANCELLED");
    expect(order.cancellationReason).toBe("payment failed: the card was declined");
    await eventually(async () => expect(await shop.product(p)).toMatchObject({ stock: 10, reserved: 0, available: 10 }));
    expect(await shop.payment(placed.id, alice.token)).toMatchObject({ status: "failed", failureReason: "card_declined", chargeId: null });

    const saga = await sagaEnded(placed.id, "CANCELLED");
    expect(stepOf(saga, "processPayment")).toMatchObject({ status: "failed", detail: "the card was declined" });
    expect(stepOf(saga, "confirmOrder").status).toBe("skipped");
    expect(stepOf(saga, "releaseInventory")).toMatchObject({ kind: "compensation", status: "succeeded" });
    expect(stepOf(saga, "refundPayment").status).toBe("skipped");
    expect(stepOf(saga, "notifyCancellation").status).toBe("succeeded");
    const [failed] = await s.database.sql<
      { data: Record<string, unknown> }[]
    >`select data from outbox.events where subject = ${placed.id} and type = 'payment.failed'`;
    expect(failed!.data).toMatchObject({ customerId: alice.id, reason: "card_declined", message: "the card was declined", amountCents: 5000 });
    const [cancelled] = await s.database.sql<
      { data: Record<string, unknown> }[]
    >`select data from outbox.events where subject = ${placed.id} and type = 'order.cancelled'`;
    expect(cancelled!.data).toMatchObject({ customerId: alice.id, code: "payment_failed", reason: "payment failed: the card was declined" });
    // The customer is told twice, once for each thing that happened: the payment failed, the order was cancelled.
    const told = await eventually(async () => {
      const page = await shop.json<{ items: { type: string; message: string; data: { orderId?: string } }[] }>("/api/v1/notifications?limit=100", alice.token);
      const mine = page.items.filter((n) => n.data.orderId === placed.id);
      return mine.length >= 2 && mine;
    }, 30_000);
    expect(told.map((n) => n.type).sort()).toEqual(["order_cancelled", "payment_failed"]);
    expect(told.find((n) => n.type === "payment_failed")!.message).toContain("the card was declined");
    expect(told.find((n) => n.type === "order_cancelled")!.message).toContain("payment failed");
  });

  it("cancels for insufficient funds the same way", async () => {
    const p = await shop.newProduct(admin, 3);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 3 }], "pm_card_insufficient_funds");
    expect((await settled(placed.id, "CANCELLED")).cancellationReason).toBe("payment failed: the card has insufficient funds");
    await eventually(async () => expect(await shop.product(p)).toMatchObject({ stock: 3, reserved: 0 }));
    expect((await shop.payment(placed.id, alice.token)).failureReason).toBe("insufficient_funds");
  });

  it("cancels an order that is out of stock, saying what was short in words, and charges nothing", async () => {
    const p = await shop.newProduct(admin, 2, 1250, "Lamp");
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 3 }]);
    const order = await settled(placed.id, "CANCELLED");
    expect(order.cancellationReason).toBe("out of stock: Lamp (requested 3, available 2)");
    const saga = await sagaEnded(placed.id, "CANCELLED");
    expect(stepOf(saga, "reserveInventory")).toMatchObject({ status: "failed", detail: "out of stock: Lamp (requested 3, available 2)" });
    expect(stepOf(saga, "processPayment").status).toBe("skipped");
    expect(stepOf(saga, "releaseInventory").status).toBe("skipped");
    expect(await shop.payment(placed.id, alice.token)).toMatchObject({ status: "voided", chargeId: null });
    expect(await shop.product(p)).toMatchObject({ stock: 2, reserved: 0 });
  });

  it("refunds and returns the stock when the customer cancels a paid order, once each", async () => {
    const p = await shop.newProduct(admin, 10);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 2 }]);
    await settled(placed.id, "CONFIRMED");
    await eventually(async () => expect(await shop.product(p)).toMatchObject({ stock: 8, reserved: 0 }));
    const res = await shop.post(`/api/v1/orders/${placed.id}/cancel`, alice.token, { reason: "changed my mind" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "CANCELLED", cancellationReason: "changed my mind" });

    const saga = await sagaEnded(placed.id, "CANCELLED");
    expect(stepOf(saga, "refundPayment").status).toBe("succeeded");
    expect(stepOf(saga, "releaseInventory")).toMatchObject({ status: "succeeded", detail: "committed stock returned" });
    const payment = await shop.payment(placed.id, alice.token);
    expect(payment).toMatchObject({ status: "refunded", amountCents: 2500 });
    expect(payment.refundId).toStartWith("re_");
    expect(await shop.product(p)).toMatchObject({ stock: 10, reserved: 0, available: 10 });
    // Cancelling again changes nothing: no second refund, no second release.
    expect((await shop.post(`/api/v1/orders/${placed.id}/cancel`, alice.token, { reason: "again" })).status).toBe(200);
    await Bun.sleep(300);
    const types = (await shop.eventsOf(placed.id)).map((e) => e.type);
    expect(types.filter((t) => t === "payment.refunded")).toHaveLength(1);
    expect(types.filter((t) => t === "inventory.released")).toHaveLength(1);
    expect(await shop.product(p)).toMatchObject({ stock: 10, reserved: 0 });
  });

  it("calls the payment off and releases the stock when the customer cancels while the processor has not answered", async () => {
    const p = await shop.newProduct(admin, 5);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }], "pm_card_timeout");
    await eventually(async () => expect(stepOf(await shop.saga(placed.id, alice.token), "processPayment").status).toBe("running"), 15_000);
    expect((await shop.post(`/api/v1/orders/${placed.id}/cancel`, alice.token, { reason: "too slow" })).status).toBe(200);
    const saga = await sagaEnded(placed.id, "CANCELLED");
    expect(stepOf(saga, "processPayment").status).toBe("skipped");
    expect(stepOf(saga, "refundPayment").status).toBe("skipped");
    expect(stepOf(saga, "releaseInventory").status).toBe("succeeded");
    expect(saga.paymentDueAt).toBeNull();
    await eventually(async () => expect((await shop.payment(placed.id, alice.token)).status).toBe("voided"), 10_000);
    expect(await shop.product(p)).toMatchObject({ stock: 5, reserved: 0 });
    const [deadlines] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from orders.saga_deadlines where order_id = ${placed.id}`;
    expect(deadlines!.n).toBe(0);
  });

  it("refuses to ship a cancelled order (409 ORDERS.CANCELLED)", async () => {
    const p = await shop.newProduct(admin, 1);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }], "pm_card_declined");
    await settled(placed.id, "CANCELLED");
    await expectProblem(await shop.post(`/api/v1/orders/${placed.id}/ship`, admin, { trackingNumber: "X1", carrier: "DHL" }), 409, "ORDERS.CANCELLED");
  });
});

describe("the payment and saga routes", () => {
  it("show an order's payment and saga to its owner and an admin only (404 to others, 401 anonymous)", async () => {
    const p = await shop.newProduct(admin, 5);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    await settled(placed.id, "CONFIRMED");
    for (const path of [`/api/v1/orders/${placed.id}/payment`, `/api/v1/orders/${placed.id}/saga`]) {
      expect((await shop.fetch(path, { token: alice.token })).status).toBe(200);
      expect((await shop.fetch(path, { token: admin })).status).toBe(200);
      const other = await shop.fetch(path, { token: bob.token });
      expect(other.status).toBe(404);
      expect(other.headers.get("content-type")).toBe("application/problem+json");
      expect((await shop.fetch(path)).status).toBe(401);
    }
    expect((await shop.fetch("/api/v1/orders/not-a-uuid/payment", { token: alice.token })).status).toBe(400);
    expect((await shop.fetch(`/api/v1/orders/${Bun.randomUUIDv7()}/saga`, { token: admin })).status).toBe(404);
  });
});

describe("temporal reads over a whole flow", () => {
  it("gives, at each event's time, the state after it and, just before, the state after the one before; history lists every event", async () => {
    const p = await shop.newProduct(admin, 5);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    await settled(placed.id, "CONFIRMED");
    await Bun.sleep(5);
    expect((await shop.post(`/api/v1/orders/${placed.id}/ship`, admin, { trackingNumber: "T1", carrier: "DHL" })).status).toBe(200);
    await Bun.sleep(5);
    expect((await shop.post(`/api/v1/orders/${placed.id}/deliver`, admin)).status).toBe(200);

    const history = await shop.json<{ items: { version: number; type: string; time: string; state: Order }[] }>(
      `/api/v1/orders/${placed.id}/history`,
      alice.token,
    );
    const [stream] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from outbox.events where stream_id = ${`order-${placed.id}`}`;
    expect(history.items).toHaveLength(stream!.n);
    expect(history.items.map((h) => [h.version, h.type, h.state.status])).toEqual([
      [1, "order-stream.placed", "PENDING"],
      [2, "order-stream.confirmed", "CONFIRMED"],
      [3, "order-stream.shipped", "SHIPPED"],
      [4, "order-stream.delivered", "DELIVERED"],
    ]);
    const at = (time: number) => shop.fetch(`/api/v1/orders/${placed.id}?at=${new Date(time).toISOString()}`, { token: alice.token });
    for (let i = 0; i < history.items.length; i++) {
      const time = Date.parse(history.items[i]!.time);
      const sameMs = history.items.filter((h) => Date.parse(h.time) === time);
      const then = (await (await at(time)).json()) as Order;
      expect(then.status).toBe(sameMs[sameMs.length - 1]!.state.status);
      if (i > 0 && Date.parse(history.items[i - 1]!.time) < time) {
        // Between the earlier event and this one: the state after the earlier one.
        const before = (await (await at(time - 1)).json()) as Order;
        expect(before).toMatchObject({ status: history.items[i - 1]!.state.status, version: i });
      }
    }
    expect((await at(Date.parse(history.items[0]!.time) - 1)).status).toBe(404);
  });

  it("lists orders created in [from, to) for an admin, exact at both edges", async () => {
    const p = await shop.newProduct(admin, 5);
    const placed = await shop.placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    const created = Date.parse((await shop.order(placed.id, admin)).createdAt);
    const range = async (from: number, to: number) => {
      const q = `from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(to).toISOString())}&limit=100`;
      return (await shop.json<{ items: Order[] }>(`/api/v1/admin/orders?${q}`, admin)).items.map((o) => o.id);
    };
    await eventually(async () => expect(await range(created, created + 1)).toEqual([placed.id]));
    expect(await range(created - 1000, created)).not.toContain(placed.id);
    expect(await range(created + 1, created + 1000)).not.toContain(placed.id);
    expect(await range(created - 1000, created + 1000)).toContain(placed.id);
  });
});
