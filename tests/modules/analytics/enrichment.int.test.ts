import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import type { OrdersApi } from "../../../modules/orders/index.ts";
import { Shop } from "../../support/commerce.ts";
import { eventually } from "../../support/eventually.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";

// Orders go through the saga (reserve, charge, confirm or cancel): seconds on a loaded machine.
setDefaultTimeout(60_000);

const KEY = "test-ingest-key-0123456789";

let s: TestServer;
let shop: Shop;
let admin: string;
let orders: OrdersApi;
beforeAll(async () => {
  s = await startTestServer({ ANALYTICS_INGEST_KEY: KEY });
  shop = Shop.listen(s);
  admin = await s.adminToken();
  orders = s.modules.find((m) => m.name === "orders")!.api as OrdersApi;
});
afterAll(() => s.close());

const ingest = (userId: string) =>
  s.request("/api/v1/analytics/events", { method: "POST", headers: { "x-api-key": KEY }, json: { userId, sessionId: "s-1", eventType: "page_view" } });
const featuresOf = async (userId: string) =>
  (await s.database.sql<{ features: Record<string, unknown> }[]>`select features from analytics.clickstream where user_id = ${userId}`).map((r) => r.features);

/** orderSettled places an order and waits until the saga has confirmed or cancelled it. */
async function orderSettled(token: string, productId: string, quantity: number, method = "pm_card_visa"): Promise<string> {
  const order = await shop.placeOk(token, [{ productId, quantity }], method);
  await eventually(async () => expect(["COMPLETED", "CANCELLED"]).toContain((await shop.saga(order.id, admin)).status), 30_000);
  return (await shop.order(order.id, admin)).status;
}

describe("user profile enrichment", () => {
  it("gives a customer's tier, order count and lifetime value from the orders they placed, cancelled ones left out", async () => {
    const alice = await s.register();
    const lamp = await shop.newProduct(admin, 100, 30_000, "Lamp");
    // Two confirmed orders (300.00 and 2 x 300.00 = 900.00, SILVER) and one declined, hence cancelled (not counted).
    expect(await orderSettled(alice.token, lamp, 1)).toBe("CONFIRMED");
    expect(await orderSettled(alice.token, lamp, 2)).toBe("CONFIRMED");
    expect(await orderSettled(alice.token, lamp, 5, "pm_card_declined")).toBe("CANCELLED");
    // The history is the orders read model's: wait for the projection before the first (cached) lookup.
    await eventually(async () =>
      expect(await orders.getCustomerHistories([alice.id])).toEqual([{ customerId: alice.id, orderCount: 2, lifetimeCents: 90_000 }]),
    );

    expect((await ingest(alice.id)).status).toBe(202);
    const [features] = await featuresOf(alice.id);
    expect(features).toMatchObject({ customerTier: "SILVER", totalOrders: 2, lifetimeValueCents: 90_000 });
  });

  it("gives GOLD at exactly its floor, 2,000.00 of lifetime value", async () => {
    const carol = await s.register();
    const desk = await shop.newProduct(admin, 100, 100_000, "Desk");
    expect(await orderSettled(carol.token, desk, 2)).toBe("CONFIRMED");
    await eventually(async () => expect((await orders.getCustomerHistories([carol.id]))[0]!.lifetimeCents).toBe(200_000));
    expect((await ingest(carol.id)).status).toBe(202);
    expect((await featuresOf(carol.id))[0]).toMatchObject({ customerTier: "GOLD", totalOrders: 1, lifetimeValueCents: 200_000 });
  });

  it("gives BRONZE with no orders to a user without orders and to an id that is not a customer's", async () => {
    const bob = await s.register();
    for (const userId of [bob.id, "anonymous-visitor-7"]) {
      expect((await ingest(userId)).status).toBe(202);
      expect((await featuresOf(userId))[0]).toMatchObject({ customerTier: "BRONZE", totalOrders: 0, lifetimeValueCents: 0 });
    }
  });
});
