import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import type { InventoryApi } from "../../../modules/inventory/index.ts";
import { now, orderAggregate, placeOrder, runOrderCommand } from "../../../modules/orders/commands.ts";
import { order } from "../../../modules/orders/order.ts";
import { fold, loadState, streamHistory } from "../../../src/platform.ts";
import { eventually } from "../../support/eventually.ts";
import { handledCount } from "../../support/handled.ts";
import { unique } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

const address = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };

async function newProduct(s: TestServer, token: string, stock: number): Promise<string> {
  const res = await s.request("/api/v1/products", {
    method: "POST",
    token,
    json: { sku: unique("SKU"), name: "Thing", category: "c", priceCents: 700, costCents: 100, stock },
  });
  return ((await res.json()) as { id: string }).id;
}

describe("order streams", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ ROLES: "api" });
  });
  afterAll(() => s.close());

  it("take snapshots at the configured interval, and a load from one equals a full replay", async () => {
    const admin = await s.adminToken();
    const user = await s.register();
    const inventory = s.modules.find((m) => m.name === "inventory")!.api as InventoryApi;
    const deps = { db: s.database.db, outbox: s.outbox.appender, inventory, snapshotEvery: 2 };
    const orders = orderAggregate(deps);
    const productId = await newProduct(s, admin, 5);
    const placed = await placeOrder(deps, orders, {
      customerId: user.id,
      items: [{ productId, quantity: 2 }],
      shippingAddress: address,
      paymentMethod: "pm_card_visa",
    });
    for (const command of [{ type: "confirm" as const }, { type: "ship" as const, trackingNumber: "T1", carrier: "DHL" }, { type: "deliver" as const }]) {
      await runOrderCommand(orders, placed.id, { ...command, now: now() });
    }
    const [snap] = await s.database.sql<
      { stream_version: number }[]
    >`select version as stream_version from outbox.snapshots where stream_id = ${`order-${placed.id}`}`;
    expect(snap?.stream_version).toBe(4);
    const loaded = await loadState(orders, placed.id);
    const history = await streamHistory(orders, placed.id);
    expect(loaded).toEqual({
      state: fold(
        order,
        history.map((h) => h.event),
      ),
      version: 4,
    });
    expect(loaded.state).toMatchObject({ status: "DELIVERED", trackingNumber: "T1", carrier: "DHL", totalCents: 1400 });
  });
});

describe("the orders read model", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  it("is unchanged by a replay of its projection from the start of the log", async () => {
    const admin = await s.adminToken();
    const user = await s.register();
    const productId = await newProduct(s, admin, 5);
    const res = await s.request("/api/v1/orders", {
      method: "POST",
      token: user.token,
      json: { items: [{ productId, quantity: 1 }], shippingAddress: address, paymentMethod: "pm_card_visa" },
    });
    const { id } = (await res.json()) as { id: string };
    const view = async () =>
      (
        await s.database.sql<
          { version: number; status: string; last_sequence: string }[]
        >`select version, status, last_sequence from orders.order_views where id = ${id}`
      )[0];
    await eventually(async () => expect(await view()).toMatchObject({ version: 2, status: "CONFIRMED" }), 15_000);
    const before = await view();

    const replay = await s.request("/api/v1/admin/subscriptions/orders.views/replay", { method: "POST", token: admin, json: { from: 0 } });
    expect(replay.status).toBeLessThan(300);
    await eventually(async () => expect(await handledCount(s.database, "orders.views", "order-stream.confirmed", id)).toBe(1), 15_000);
    // Handled again from the start; the row has not moved.
    expect(await view()).toEqual(before);
  });
});
