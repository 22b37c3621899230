import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { OrderCancelled, OrderConfirmed, OrderCreated } from "../../../modules/orders/events.ts";
import { eventually } from "../../support/eventually.ts";
import { handledCount } from "../../support/handled.ts";
import { expectProblem, fieldPaths, unique } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

let s: TestServer;
let admin: string;
let user: string;
beforeAll(async () => {
  s = await startTestServer();
  admin = await s.adminToken();
  user = (await s.register()).token;
});
afterAll(() => s.close());

interface Product {
  id: string;
  sku: string;
  stock: number;
  reserved: number;
  available: number;
  lowStockThreshold: number;
  priceCents: number;
  category: string;
}

const newProduct = async (over: Record<string, unknown> = {}): Promise<Product> => {
  const res = await s.request("/api/v1/products", {
    method: "POST",
    token: admin,
    json: { sku: unique("SKU"), name: "Widget", category: "tools", priceCents: 1999, costCents: 800, stock: 20, ...over },
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as Product;
};
const product = async (id: string) => (await (await s.request(`/api/v1/products/${id}`)).json()) as Product;

const address = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };
/** orderCreated appends `order.created` as the orders module would (twice when asked: a redelivery). */
const orderCreated = async (lines: { productId: string; quantity: number }[], times = 1) => {
  const orderId = randomUUIDv7();
  const items = lines.map((l) => ({ ...l, name: "Widget", unitPriceCents: 100, lineTotalCents: 100 * l.quantity }));
  const data = {
    orderId,
    customerId: randomUUIDv7(),
    items,
    totalCents: items.reduce((a, l) => a + l.lineTotalCents, 0),
    currency: "USD",
    shippingAddress: address,
    paymentMethod: "pm_card_visa",
  };
  for (let i = 0; i < times; i++) await s.database.db.transaction((tx) => s.outbox.appender.append(tx, [OrderCreated.with(data, { subject: orderId })]));
  return orderId;
};
const orderEvent = async (def: typeof OrderConfirmed | typeof OrderCancelled, orderId: string, times = 1) => {
  for (let i = 0; i < times; i++) {
    const event =
      def === OrderConfirmed
        ? OrderConfirmed.with({ orderId, customerId: randomUUIDv7(), totalCents: 100, currency: "USD" }, { subject: orderId })
        : OrderCancelled.with({ orderId, customerId: randomUUIDv7(), reason: "test", previousStatus: "PENDING" }, { subject: orderId });
    await s.database.db.transaction(async (tx) => {
      await s.outbox.appender.append(tx, [event]);
    });
  }
};
const eventsOf = (type: string, subject: string) =>
  s.database.sql<
    { data: Record<string, unknown>; causation_id: string | null }[]
  >`select data, causation_id from outbox.events where type = ${type} and subject = ${subject} order by position`;
const reservation = async (orderId: string) =>
  (await s.database.sql<{ status: string }[]>`select status from inventory.reservations where order_id = ${orderId}`)[0]?.status;

describe("catalog API", () => {
  it("creates a product (admin) with available = stock and the default low-stock threshold of 10", async () => {
    const p = await newProduct({ stock: 7 });
    expect(p).toMatchObject({ stock: 7, reserved: 0, available: 7, lowStockThreshold: 10, priceCents: 1999 });
    expect(await product(p.id)).toMatchObject({ id: p.id, available: 7 });
  });

  it("refuses product writes from a non-admin (403) and an anonymous caller (401)", async () => {
    const body = { sku: unique("S"), name: "x", category: "c", priceCents: 1, costCents: 1 };
    await expectProblem(await s.request("/api/v1/products", { method: "POST", token: user, json: body }), 403, "AUTH.ADMIN_REQUIRED");
    await expectProblem(await s.request("/api/v1/products", { method: "POST", json: body }), 401, "AUTH.MISSING_TOKEN");
  });

  it("answers 409 INVENTORY.SKU_TAKEN for a duplicate SKU, on create and on patch", async () => {
    const a = await newProduct();
    const b = await newProduct();
    await expectProblem(
      await s.request("/api/v1/products", { method: "POST", token: admin, json: { sku: a.sku, name: "x", category: "c", priceCents: 1, costCents: 1 } }),
      409,
      "INVENTORY.SKU_TAKEN",
    );
    await expectProblem(await s.request(`/api/v1/products/${b.id}`, { method: "PATCH", token: admin, json: { sku: a.sku } }), 409, "INVENTORY.SKU_TAKEN");
  });

  it("rejects bad input with per-field 400s: negative or fractional money, unknown fields, stock in a patch", async () => {
    const p = await expectProblem(
      await s.request("/api/v1/products", { method: "POST", token: admin, json: { sku: "", name: "x", category: "c", priceCents: -1, costCents: 1.5 } }),
      400,
      "VALIDATION.FAILED",
    );
    expect(fieldPaths(p)).toEqual(["costCents", "priceCents", "sku"]);
    const w = await newProduct();
    await expectProblem(await s.request(`/api/v1/products/${w.id}`, { method: "PATCH", token: admin, json: { stock: 5 } }), 400, "VALIDATION.FAILED");
    await expectProblem(await s.request(`/api/v1/products/${w.id}`, { method: "PATCH", token: admin, json: {} }), 400, "VALIDATION.FAILED");
    await expectProblem(await s.request(`/api/v1/products/not-a-uuid`), 400, "VALIDATION.FAILED");
  });

  it("patches catalog fields and restocks; unknown ids are 404", async () => {
    const p = await newProduct({ stock: 3 });
    const res = await s.request(`/api/v1/products/${p.id}`, { method: "PATCH", token: admin, json: { name: "Better", priceCents: 2500 } });
    expect(await res.json()).toMatchObject({ name: "Better", priceCents: 2500, stock: 3 });
    const r = await s.request(`/api/v1/products/${p.id}/restock`, { method: "POST", token: admin, json: { quantity: 5 } });
    expect(await r.json()).toMatchObject({ stock: 8, available: 8 });
    await expectProblem(await s.request(`/api/v1/products/${p.id}/restock`, { method: "POST", token: admin, json: { quantity: 0 } }), 400, "VALIDATION.FAILED");
    const ghost = randomUUIDv7();
    await expectProblem(await s.request(`/api/v1/products/${ghost}`), 404, "INVENTORY.PRODUCT_NOT_FOUND");
    await expectProblem(
      await s.request(`/api/v1/products/${ghost}/restock`, { method: "POST", token: admin, json: { quantity: 1 } }),
      404,
      "INVENTORY.PRODUCT_NOT_FOUND",
    );
  });

  it("lists products in pages by cursor, filtered by category, each product once", async () => {
    const category = unique("cat");
    const made = [];
    for (let i = 0; i < 5; i++) made.push((await newProduct({ category })).id);
    await newProduct({ category: unique("other") });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const res = await s.request(`/api/v1/products?category=${category}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      const body = (await res.json()) as { items: Product[]; nextCursor: string | null };
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((p) => p.id));
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(made);
    await expectProblem(await s.request(`/api/v1/products?cursor=garbage!`), 400, "PAGINATION.INVALID_CURSOR");
  });
});

describe("reservations on order events", () => {
  it("reserves every line on order.created and publishes inventory.reserved caused by it", async () => {
    const a = await newProduct({ stock: 10, lowStockThreshold: 2 });
    const b = await newProduct({ stock: 5, lowStockThreshold: 2 });
    const orderId = await orderCreated([
      { productId: a.id, quantity: 3 },
      { productId: b.id, quantity: 1 },
    ]);
    const [ev] = await eventually(async () => {
      const evs = await eventsOf("inventory.reserved", orderId);
      expect(evs).toHaveLength(1);
      return evs;
    });
    expect(ev!.causation_id).toBeString();
    expect(await product(a.id)).toMatchObject({ stock: 10, reserved: 3, available: 7 });
    expect(await product(b.id)).toMatchObject({ stock: 5, reserved: 1, available: 4 });
  });

  it("reserves nothing when one line is short, and says requested and available per short line", async () => {
    const a = await newProduct({ stock: 10 });
    const b = await newProduct({ stock: 2 });
    const orderId = await orderCreated([
      { productId: a.id, quantity: 3 },
      { productId: b.id, quantity: 5 },
    ]);
    const [ev] = await eventually(async () => {
      const evs = await eventsOf("inventory.reservation_failed", orderId);
      expect(evs).toHaveLength(1);
      return evs;
    });
    expect(ev!.data).toEqual({ orderId, reason: "insufficient_stock", lines: [{ productId: b.id, requested: 5, available: 2 }] });
    expect(await product(a.id)).toMatchObject({ reserved: 0, available: 10 });
    expect(await eventsOf("inventory.reserved", orderId)).toHaveLength(0);
  });

  it("fails with product_not_found for an unknown product and reserves nothing", async () => {
    const a = await newProduct({ stock: 10 });
    const ghost = randomUUIDv7();
    const orderId = await orderCreated([
      { productId: a.id, quantity: 1 },
      { productId: ghost, quantity: 1 },
    ]);
    const [ev] = await eventually(async () => {
      const evs = await eventsOf("inventory.reservation_failed", orderId);
      expect(evs).toHaveLength(1);
      return evs;
    });
    expect(ev!.data).toEqual({ orderId, reason: "product_not_found", productIds: [ghost] });
    expect(await product(a.id)).toMatchObject({ reserved: 0 });
  });

  it("reserves once when order.created is delivered twice", async () => {
    const a = await newProduct({ stock: 10 });
    const orderId = await orderCreated([{ productId: a.id, quantity: 4 }], 2);
    await eventually(async () => expect(await handledCount(s.database, "inventory.reservations", "order.created", orderId)).toBe(2));
    expect(await eventsOf("inventory.reserved", orderId)).toHaveLength(1);
    expect(await product(a.id)).toMatchObject({ reserved: 4 });
  });

  it("releases on order.cancelled once, even when delivered twice", async () => {
    const a = await newProduct({ stock: 10 });
    const orderId = await orderCreated([{ productId: a.id, quantity: 4 }]);
    await eventually(async () => expect(await reservation(orderId)).toBe("reserved"));
    await orderEvent(OrderCancelled, orderId, 2);
    await eventually(async () => expect(await handledCount(s.database, "inventory.reservations", "order.cancelled", orderId)).toBe(2));
    expect(await eventsOf("inventory.released", orderId)).toHaveLength(1);
    expect((await eventsOf("inventory.released", orderId))[0]!.data).toEqual({ orderId, lines: [{ productId: a.id, quantity: 4 }], from: "reserved" });
    expect(await product(a.id)).toMatchObject({ stock: 10, reserved: 0, available: 10 });
  });

  it("turns the reservation into a stock decrement on order.confirmed once, even when delivered twice", async () => {
    const a = await newProduct({ stock: 10 });
    const orderId = await orderCreated([{ productId: a.id, quantity: 4 }]);
    await eventually(async () => expect(await reservation(orderId)).toBe("reserved"));
    await orderEvent(OrderConfirmed, orderId, 2);
    await eventually(async () => expect(await handledCount(s.database, "inventory.reservations", "order.confirmed", orderId)).toBe(2));
    expect(await reservation(orderId)).toBe("committed");
    expect(await product(a.id)).toMatchObject({ stock: 6, reserved: 0, available: 6 });
    expect(await eventsOf("inventory.committed", orderId)).toHaveLength(1);
  });

  it("returns committed stock when a confirmed order is cancelled", async () => {
    const a = await newProduct({ stock: 10 });
    const orderId = await orderCreated([{ productId: a.id, quantity: 4 }]);
    await orderEvent(OrderConfirmed, orderId);
    await orderEvent(OrderCancelled, orderId);
    await eventually(async () => expect(await eventsOf("inventory.released", orderId)).toHaveLength(1));
    expect((await eventsOf("inventory.released", orderId))[0]!.data).toMatchObject({ from: "committed" });
    expect(await product(a.id)).toMatchObject({ stock: 10, reserved: 0 });
  });

  it("publishes inventory.low once when available crosses down through the threshold, and again only after it rose above", async () => {
    const a = await newProduct({ stock: 14, lowStockThreshold: 10 });
    const o1 = await orderCreated([{ productId: a.id, quantity: 3 }]); // 14 -> 11: above
    const o2 = await orderCreated([{ productId: a.id, quantity: 2 }]); // 11 -> 9: crosses
    const o3 = await orderCreated([{ productId: a.id, quantity: 2 }]); // 9 -> 7: already below
    for (const o of [o1, o2, o3]) await eventually(async () => expect(await reservation(o)).toBe("reserved"));
    const low = await eventsOf("inventory.low", a.id);
    expect(low.map((e) => e.data)).toEqual([{ productId: a.id, sku: a.sku, name: "Widget", available: 9, threshold: 10 }]);
    await orderEvent(OrderCancelled, o1); // 7 -> 10: not above
    await orderEvent(OrderCancelled, o2); // 10 -> 12: above again
    for (const o of [o1, o2]) await eventually(async () => expect(await reservation(o)).toBe("released"));
    const o4 = await orderCreated([{ productId: a.id, quantity: 5 }]); // 12 -> 7: crosses again
    await eventually(async () => expect(await reservation(o4)).toBe("reserved"));
    expect((await eventsOf("inventory.low", a.id)).map((e) => e.data.available)).toEqual([9, 7]);
  });
});
