import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { eventually } from "../../support/eventually.ts";
import { expectProblem, fieldPaths, unique } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

let s: TestServer;
let admin: string;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
beforeAll(async () => {
  s = await startTestServer();
  admin = await s.adminToken();
  alice = await s.register();
  bob = await s.register();
});
afterAll(() => s.close());

interface Order {
  id: string;
  customerId: string;
  status: string;
  items: { productId: string; name: string; quantity: number; unitPriceCents: number; lineTotalCents: number }[];
  totalCents: number;
  version: number;
  cancellationReason: string | null;
  trackingNumber: string | null;
  carrier: string | null;
  updatedAt: string;
}

const address = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };
const newProduct = async (stock: number, priceCents = 1250, name = "Gadget") => {
  const res = await s.request("/api/v1/products", {
    method: "POST",
    token: admin,
    json: { sku: unique("SKU"), name, category: "orders-test", priceCents, costCents: 500, stock },
  });
  if (res.status !== 201) throw new Error(`product: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
};
const product = async (id: string) => (await (await s.request(`/api/v1/products/${id}`)).json()) as { stock: number; reserved: number; available: number };
const place = (token: string, items: unknown[], headers: Record<string, string> = {}) =>
  s.request("/api/v1/orders", { method: "POST", token, json: { items, shippingAddress: address, paymentMethod: "pm_card_visa" }, headers });
const placeOk = async (token: string, items: unknown[]) => {
  const res = await place(token, items);
  if (res.status !== 202) throw new Error(`place: ${res.status} ${await res.text()}`);
  return (await res.json()) as Order;
};
const get = async (id: string, token = alice.token) => s.request(`/api/v1/orders/${id}`, { token });
const statusOf = async (id: string) => ((await (await get(id, admin)).json()) as Order).status;
const settled = (id: string, status: string) => eventually(async () => expect(await statusOf(id)).toBe(status), 15_000);
const post = (path: string, token: string, json?: unknown) => s.request(path, { method: "POST", token, ...(json === undefined ? {} : { json }) });

describe("placing an order", () => {
  it("answers 202 with the PENDING order priced from the catalog (a client price is ignored) and its Location", async () => {
    const p1 = await newProduct(10, 1250, "Gadget");
    const p2 = await newProduct(10, 99, "Nut");
    const res = await place(alice.token, [
      { productId: p1, quantity: 2, unitPriceCents: 1 },
      { productId: p2, quantity: 3, priceCents: 0 },
    ]);
    expect(res.status).toBe(202);
    const order = (await res.json()) as Order;
    expect(res.headers.get("location")).toBe(`/api/v1/orders/${order.id}`);
    expect(order).toMatchObject({ customerId: alice.id, status: "PENDING", totalCents: 2 * 1250 + 3 * 99, currency: "USD", version: 1 });
    expect(order.items).toEqual([
      { productId: p1, name: "Gadget", quantity: 2, unitPriceCents: 1250, lineTotalCents: 2500 },
      { productId: p2, name: "Nut", quantity: 3, unitPriceCents: 99, lineTotalCents: 297 },
    ]);
  });

  it("reserves the stock and confirms the order; the reservation becomes a stock decrement", async () => {
    const p = await newProduct(10);
    const order = await placeOk(alice.token, [{ productId: p, quantity: 4 }]);
    await settled(order.id, "CONFIRMED");
    await eventually(async () => expect(await product(p)).toMatchObject({ stock: 6, reserved: 0, available: 6 }));
    // One flow, one correlation id: the order's events and inventory's reactions share it.
    const rows = await s.database.sql<{ correlation_id: string }[]>`select distinct correlation_id from outbox.events where subject = ${order.id}`;
    expect(rows).toHaveLength(1);
  });

  it("cancels an order when stock is short, with the reason, and leaves the stock as it was", async () => {
    const p = await newProduct(2);
    const order = await placeOk(alice.token, [{ productId: p, quantity: 3 }]);
    await settled(order.id, "CANCELLED");
    const after = (await (await get(order.id)).json()) as Order;
    expect(after.cancellationReason).toContain("out of stock");
    expect(after.cancellationReason).toContain("requested 3, available 2");
    expect(await product(p)).toMatchObject({ stock: 2, reserved: 0 });
  });

  it("answers 422 ORDERS.UNKNOWN_PRODUCT for a product the catalog does not have", async () => {
    const ghost = randomUUIDv7();
    const p = await expectProblem(await place(alice.token, [{ productId: ghost, quantity: 1 }]), 422, "ORDERS.UNKNOWN_PRODUCT");
    expect(p.detail).toContain(ghost);
  });

  it("rejects bad orders with per-field 400s: no lines, 51 lines, quantities 0 and 101, a missing address field", async () => {
    const p = await newProduct(10);
    await expectProblem(await place(alice.token, []), 400, "VALIDATION.FAILED");
    const many = Array.from({ length: 51 }, () => ({ productId: randomUUIDv7(), quantity: 1 }));
    expect(fieldPaths(await expectProblem(await place(alice.token, many), 400, "VALIDATION.FAILED"))).toEqual(["items"]);
    const q = await expectProblem(
      await place(alice.token, [
        { productId: p, quantity: 0 },
        { productId: p, quantity: 101 },
      ]),
      400,
      "VALIDATION.FAILED",
    );
    expect(fieldPaths(q)).toEqual(["items.0.quantity", "items.1.quantity"]);
    const res = await s.request("/api/v1/orders", {
      method: "POST",
      token: alice.token,
      json: { items: [{ productId: p, quantity: 1 }], shippingAddress: { ...address, city: undefined }, paymentMethod: "pm_card_visa" },
    });
    expect(fieldPaths(await expectProblem(res, 400, "VALIDATION.FAILED"))).toEqual(["shippingAddress.city"]);
    await expectProblem(
      await place(alice.token, [
        { productId: p, quantity: 1 },
        { productId: p, quantity: 2 },
      ]),
      400,
      "ORDERS.INVALID",
    );
    await expectProblem(await s.request("/api/v1/orders", { method: "POST", json: {} }), 401, "AUTH.MISSING_TOKEN");
  });

  it("places one order for a retried request with the same Idempotency-Key", async () => {
    const p = await newProduct(10);
    const key = randomUUIDv7();
    const [a, b] = [
      await place(alice.token, [{ productId: p, quantity: 2 }], { "idempotency-key": key }),
      await place(alice.token, [{ productId: p, quantity: 2 }], { "idempotency-key": key }),
    ];
    const [first, second] = [(await a.json()) as Order, (await b.json()) as Order];
    expect(second.id).toBe(first.id);
    await settled(first.id, "CONFIRMED");
    await eventually(async () => expect(await product(p)).toMatchObject({ stock: 8, reserved: 0 }));
    const [row] = await s.database.sql<
      { n: number }[]
    >`select count(*)::int as n from outbox.events where type = 'order.created' and data->'items'->0->>'productId' = ${p}`;
    expect(row!.n).toBe(1);
  });

  it("with Prefer: wait=N answers with the final order once the flow has run", async () => {
    const p = await newProduct(5);
    const res = await place(alice.token, [{ productId: p, quantity: 1 }], { prefer: "wait=10" });
    expect(res.status).toBe(201);
    expect(((await res.json()) as Order).status).toBe("CONFIRMED");
  });
});

describe("reading orders", () => {
  it("shows an order to its owner and an admin, and to nobody else (404)", async () => {
    const p = await newProduct(5);
    const order = await placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    expect((await get(order.id)).status).toBe(200);
    expect((await get(order.id, admin)).status).toBe(200);
    await expectProblem(await get(order.id, bob.token), 404, "ORDERS.NOT_FOUND");
    await expectProblem(await get(randomUUIDv7()), 404, "ORDERS.NOT_FOUND");
    await expectProblem(await get("nope"), 400, "VALIDATION.FAILED");
  });

  it("lists the caller's orders newest first, by page, filtered by status", async () => {
    const user = await s.register();
    const p = await newProduct(100);
    const short = await newProduct(0);
    const ok: string[] = [];
    for (let i = 0; i < 3; i++) ok.push((await placeOk(user.token, [{ productId: p, quantity: 1 }])).id);
    const failed = (await placeOk(user.token, [{ productId: short, quantity: 1 }])).id;
    await placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    for (const id of ok) await settled(id, "CONFIRMED");
    await settled(failed, "CANCELLED");
    const seen: string[] = [];
    await eventually(async () => {
      seen.length = 0;
      let cursor: string | null = null;
      for (let pages = 0; pages < 5; pages++) {
        const res = await s.request(`/api/v1/orders?limit=3${cursor ? `&cursor=${cursor}` : ""}`, { token: user.token });
        const body = (await res.json()) as { items: Order[]; nextCursor: string | null };
        seen.push(...body.items.map((o) => o.id));
        cursor = body.nextCursor;
        if (!cursor) break;
      }
      expect(seen).toEqual([failed, ...ok].sort().reverse());
    });
    await eventually(async () => {
      const res = await s.request(`/api/v1/orders?status=CANCELLED`, { token: user.token });
      const body = (await res.json()) as { items: Order[] };
      expect(body.items.map((o) => [o.id, o.status])).toEqual([[failed, "CANCELLED"]]);
    });
    await expectProblem(await s.request(`/api/v1/orders?status=LOST`, { token: user.token }), 400, "VALIDATION.FAILED");
  });

  it("lists orders created in a range for an admin: from inclusive, to exclusive", async () => {
    const p = await newProduct(20);
    const a = await placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    const b = await placeOk(bob.token, [{ productId: p, quantity: 1 }]);
    const createdOf = async (id: string) => ((await (await get(id, admin)).json()) as { createdAt: string }).createdAt;
    const [ta, tb] = [await createdOf(a.id), await createdOf(b.id)];
    const range = async (from: string, to: string) => {
      const res = await s.request(`/api/v1/admin/orders?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&limit=100`, { token: admin });
      return ((await res.json()) as { items: Order[] }).items.map((o) => o.id);
    };
    await eventually(async () => expect(await range(ta, new Date(new Date(tb).getTime() + 1).toISOString())).toEqual([a.id, b.id]));
    expect(await range(ta, tb)).toEqual(tb === ta ? [] : [a.id]);
    await expectProblem(await s.request(`/api/v1/admin/orders?from=${ta}&to=${tb}`, { token: alice.token }), 403, "AUTH.ADMIN_REQUIRED");
    await expectProblem(await s.request(`/api/v1/admin/orders?from=${tb}&to=2000-01-01T00:00:00Z`, { token: admin }), 400, "VALIDATION.FAILED");
  });
});

describe("the order lifecycle", () => {
  it("goes PENDING -> CONFIRMED -> SHIPPED -> DELIVERED; history lists every event with the state after it", async () => {
    const p = await newProduct(5);
    const order = await placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    await settled(order.id, "CONFIRMED");
    await expectProblem(await post(`/api/v1/orders/${order.id}/ship`, alice.token, { trackingNumber: "1Z", carrier: "UPS" }), 403, "AUTH.ADMIN_REQUIRED");
    const shipped = await post(`/api/v1/orders/${order.id}/ship`, admin, { trackingNumber: "1Z999", carrier: "UPS" });
    expect(await shipped.json()).toMatchObject({ status: "SHIPPED", trackingNumber: "1Z999", carrier: "UPS", version: 3 });
    await expectProblem(await post(`/api/v1/orders/${order.id}/cancel`, alice.token, { reason: "too late" }), 409, "ORDERS.ALREADY_SHIPPED");
    expect(await (await post(`/api/v1/orders/${order.id}/deliver`, admin)).json()).toMatchObject({ status: "DELIVERED", version: 4 });

    const history = (await (await s.request(`/api/v1/orders/${order.id}/history`, { token: alice.token })).json()) as {
      items: { version: number; type: string; time: string; eventId: string; state: Order }[];
    };
    expect(history.items.map((h) => [h.version, h.type, h.state.status])).toEqual([
      [1, "order-stream.placed", "PENDING"],
      [2, "order-stream.confirmed", "CONFIRMED"],
      [3, "order-stream.shipped", "SHIPPED"],
      [4, "order-stream.delivered", "DELIVERED"],
    ]);
    await expectProblem(await s.request(`/api/v1/orders/${order.id}/history`, { token: bob.token }), 404, "ORDERS.NOT_FOUND");

    // The state at a time between two events is the state after the earlier one.
    const times = history.items.map((h) => new Date(h.time).getTime());
    const between = new Date(times[1]! + Math.max(0, Math.floor((times[2]! - times[1]!) / 2))).toISOString();
    const then = (await (await s.request(`/api/v1/orders/${order.id}?at=${between}`, { token: alice.token })).json()) as Order;
    expect(then).toMatchObject({ status: times[2] === times[1] ? "SHIPPED" : "CONFIRMED" });
    const before = await s.request(`/api/v1/orders/${order.id}?at=2000-01-01T00:00:00Z`, { token: alice.token });
    await expectProblem(before, 404, "ORDERS.NOT_FOUND");
    await expectProblem(await s.request(`/api/v1/orders/${order.id}?at=yesterday`, { token: alice.token }), 400, "VALIDATION.FAILED");
  });

  it("lets the owner cancel a confirmed order, which returns its stock", async () => {
    const p = await newProduct(5);
    const order = await placeOk(alice.token, [{ productId: p, quantity: 2 }]);
    await settled(order.id, "CONFIRMED");
    await eventually(async () => expect(await product(p)).toMatchObject({ stock: 3, reserved: 0 }));
    await expectProblem(await post(`/api/v1/orders/${order.id}/cancel`, bob.token, { reason: "not mine" }), 404, "ORDERS.NOT_FOUND");
    const res = await post(`/api/v1/orders/${order.id}/cancel`, alice.token, { reason: "changed my mind" });
    expect(await res.json()).toMatchObject({ status: "CANCELLED", cancellationReason: "changed my mind" });
    await eventually(async () => expect(await product(p)).toMatchObject({ stock: 5, reserved: 0, available: 5 }));
    // Cancelling again changes nothing.
    expect(await (await post(`/api/v1/orders/${order.id}/cancel`, alice.token, { reason: "again" })).json()).toMatchObject({
      status: "CANCELLED",
      cancellationReason: "changed my mind",
    });
    await expectProblem(await post(`/api/v1/orders/${order.id}/cancel`, alice.token, {}), 400, "VALIDATION.FAILED");
  });

  it("refuses to ship a cancelled order (409 ORDERS.CANCELLED)", async () => {
    const p = await newProduct(0);
    const order = await placeOk(alice.token, [{ productId: p, quantity: 1 }]);
    await settled(order.id, "CANCELLED");
    await expectProblem(await post(`/api/v1/orders/${order.id}/ship`, admin, { trackingNumber: "1Z", carrier: "UPS" }), 409, "ORDERS.CANCELLED");
    await expectProblem(await post(`/api/v1/orders/${randomUUIDv7()}/ship`, admin, { trackingNumber: "1Z", carrier: "UPS" }), 404, "ORDERS.NOT_FOUND");
  });
});

describe("under concurrency", () => {
  it("confirms exactly the stock when 100 orders race for a product with 25 units; the rest are cancelled and the counts agree", async () => {
    const p = await newProduct(25);
    const answers = await Promise.all(Array.from({ length: 100 }, () => place(alice.token, [{ productId: p, quantity: 1 }])));
    expect(answers.map((r) => r.status)).toEqual(Array<number>(100).fill(202));
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as Order).id));
    const statuses = await eventually(async () => {
      const rows = await Promise.all(ids.map(statusOf));
      expect(rows.filter((x) => x === "PENDING")).toHaveLength(0);
      return rows;
    }, 60_000);
    expect(statuses.filter((x) => x === "CONFIRMED")).toHaveLength(25);
    expect(statuses.filter((x) => x === "CANCELLED")).toHaveLength(75);
    await eventually(async () => expect(await product(p)).toMatchObject({ stock: 0, reserved: 0, available: 0 }), 15_000);
  }, 90_000);
});
