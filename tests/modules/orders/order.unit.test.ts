import { describe, expect, it } from "bun:test";
import {
  InvalidOrderError,
  OrderAlreadyExistsError,
  OrderAlreadyShippedError,
  OrderCancelledError,
  OrderNotConfirmedError,
  OrderNotFoundError,
  OrderNotPendingError,
  OrderNotShippedError,
  UnknownProductsError,
} from "../../../modules/orders/errors.ts";
import type { OrderStreamEvent } from "../../../modules/orders/events.ts";
import { type CatalogEntry, type OrderCommand, order } from "../../../modules/orders/order.ts";
import { deciderSpec } from "../../support/decider.ts";

const spec = deciderSpec(order);
const T0 = "2026-01-01T10:00:00.000Z";
const T1 = "2026-01-01T11:00:00.000Z";
const ORDER = "01900000-0000-7000-8000-000000000001";
const CUSTOMER = "01900000-0000-7000-8000-0000000000c1";
const P1 = "01900000-0000-7000-8000-0000000000a1";
const P2 = "01900000-0000-7000-8000-0000000000a2";
const address = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };
const catalog: CatalogEntry[] = [
  { productId: P1, name: "Laptop", unitPriceCents: 99_999 },
  { productId: P2, name: "Mouse", unitPriceCents: 1_999 },
];

const place = (lines: { productId: string; quantity: number }[], cat = catalog): OrderCommand => ({
  type: "place",
  orderId: ORDER,
  customerId: CUSTOMER,
  lines,
  catalog: cat,
  shippingAddress: address,
  paymentMethod: "pm_card_visa",
  now: T0,
});

const placed: OrderStreamEvent = {
  type: "order-stream.placed",
  data: {
    orderId: ORDER,
    customerId: CUSTOMER,
    items: [
      { productId: P1, name: "Laptop", quantity: 1, unitPriceCents: 99_999, lineTotalCents: 99_999 },
      { productId: P2, name: "Mouse", quantity: 3, unitPriceCents: 1_999, lineTotalCents: 5_997 },
    ],
    totalCents: 105_996,
    currency: "USD",
    shippingAddress: address,
    paymentMethod: "pm_card_visa",
    placedAt: T0,
  },
};
const confirmed: OrderStreamEvent = { type: "order-stream.confirmed", data: { orderId: ORDER, confirmedAt: T1 } };
const cancelled = (previousStatus: "PENDING" | "CONFIRMED", reason = "changed my mind"): OrderStreamEvent => ({
  type: "order-stream.cancelled",
  data: { orderId: ORDER, reason, previousStatus, cancelledAt: T1 },
});
const shipped: OrderStreamEvent = { type: "order-stream.shipped", data: { orderId: ORDER, trackingNumber: "1Z999", carrier: "UPS", shippedAt: T1 } };
const delivered: OrderStreamEvent = { type: "order-stream.delivered", data: { orderId: ORDER, deliveredAt: T1 } };
const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ productId: `01900000-0000-7000-8000-${String(i).padStart(12, "0")}`, quantity: 1 }));
const catalogFor = (n: number) => lines(n).map((l) => ({ productId: l.productId, name: "x", unitPriceCents: 1 }));

describe("placing an order", () => {
  it("prices every line from the catalog and totals in integer cents", () =>
    spec
      .given([])
      .when(
        place([
          { productId: P1, quantity: 1 },
          { productId: P2, quantity: 3 },
        ]),
      )
      .then(placed));

  it("starts the order PENDING with its lines, total, address and payment method", () =>
    spec
      .given([])
      .when(
        place([
          { productId: P1, quantity: 1 },
          { productId: P2, quantity: 3 },
        ]),
      )
      .thenState({
        id: ORDER,
        customerId: CUSTOMER,
        status: "PENDING",
        items: placed.type === "order-stream.placed" ? placed.data.items : [],
        totalCents: 105_996,
        currency: "USD",
        shippingAddress: address,
        paymentMethod: "pm_card_visa",
        createdAt: T0,
        updatedAt: T0,
        cancellationReason: null,
        trackingNumber: null,
        carrier: null,
      }));

  it("refuses an order without lines", () => spec.given([]).when(place([])).thenThrows(InvalidOrderError, { code: "ORDERS.INVALID" }));

  it("accepts 50 lines and refuses 51", () => {
    spec
      .given([])
      .when(place(lines(50), catalogFor(50)))
      .thenState(expectStatus("PENDING"));
    spec
      .given([])
      .when(place(lines(51), catalogFor(51)))
      .thenThrows(InvalidOrderError);
  });

  it("accepts quantities 1 and 100 and refuses 0, 101 and fractions", () => {
    for (const quantity of [1, 100])
      spec
        .given([])
        .when(place([{ productId: P1, quantity }]))
        .thenState(expectStatus("PENDING"));
    for (const quantity of [0, 101, 1.5, -1])
      spec
        .given([])
        .when(place([{ productId: P1, quantity }]))
        .thenThrows(InvalidOrderError, { details: { errors: [{ path: "items.0.quantity", message: expect.any(String) }] } });
  });

  it("refuses the same product on two lines", () =>
    spec
      .given([])
      .when(
        place([
          { productId: P1, quantity: 1 },
          { productId: P1, quantity: 2 },
        ]),
      )
      .thenThrows(InvalidOrderError));

  it("refuses a product the catalog does not have, naming it", () =>
    spec
      .given([])
      .when(
        place(
          [
            { productId: P1, quantity: 1 },
            { productId: P2, quantity: 1 },
          ],
          [catalog[0]!],
        ),
      )
      .thenThrows(UnknownProductsError, { productIds: [P2] }));

  it("refuses to place an order twice", () =>
    spec
      .given([placed])
      .when(place([{ productId: P1, quantity: 1 }]))
      .thenThrows(OrderAlreadyExistsError));
});

describe("confirming", () => {
  it("confirms a pending order", () => spec.given([placed]).when({ type: "confirm", now: T1 }).then(confirmed));
  it("does nothing for a confirmed order (a redelivered confirmation)", () =>
    spec.given([placed, confirmed]).when({ type: "confirm", now: T1 }).thenNothingHappens());
  it("refuses to confirm a cancelled order", () =>
    spec
      .given([placed, cancelled("PENDING")])
      .when({ type: "confirm", now: T1 })
      .thenThrows(OrderNotPendingError, { code: "ORDERS.NOT_PENDING" }));
  it("refuses to confirm an order that does not exist", () => spec.given([]).when({ type: "confirm", now: T1 }).thenThrows(OrderNotFoundError));
});

describe("cancelling", () => {
  it("cancels a pending order with the reason and the status it had", () =>
    spec.given([placed]).when({ type: "cancel", reason: "changed my mind", now: T1 }).then(cancelled("PENDING")));
  it("cancels a confirmed order", () =>
    spec.given([placed, confirmed]).when({ type: "cancel", reason: "changed my mind", now: T1 }).then(cancelled("CONFIRMED")));
  it("keeps the reason in the state", () =>
    spec
      .given([placed])
      .when({ type: "cancel", reason: "too slow", now: T1 })
      .thenState(expectFields({ status: "CANCELLED", cancellationReason: "too slow", updatedAt: T1 })));
  it("does nothing for a cancelled order", () =>
    spec
      .given([placed, cancelled("PENDING")])
      .when({ type: "cancel", reason: "again", now: T1 })
      .thenNothingHappens());
  it("refuses after shipping", () =>
    spec
      .given([placed, confirmed, shipped])
      .when({ type: "cancel", reason: "late", now: T1 })
      .thenThrows(OrderAlreadyShippedError, { code: "ORDERS.ALREADY_SHIPPED" }));
  it("refuses after delivery", () =>
    spec.given([placed, confirmed, shipped, delivered]).when({ type: "cancel", reason: "late", now: T1 }).thenThrows(OrderAlreadyShippedError));
});

describe("shipping and delivering", () => {
  it("ships a confirmed order with its tracking number and carrier", () =>
    spec.given([placed, confirmed]).when({ type: "ship", trackingNumber: "1Z999", carrier: "UPS", now: T1 }).then(shipped));
  it("refuses to ship a cancelled order", () =>
    spec
      .given([placed, cancelled("PENDING")])
      .when({ type: "ship", trackingNumber: "1", carrier: "UPS", now: T1 })
      .thenThrows(OrderCancelledError, { code: "ORDERS.CANCELLED", kind: "illegal_state" }));
  it("refuses to ship a pending order", () =>
    spec.given([placed]).when({ type: "ship", trackingNumber: "1", carrier: "UPS", now: T1 }).thenThrows(OrderNotConfirmedError));
  it("refuses to ship twice", () =>
    spec.given([placed, confirmed, shipped]).when({ type: "ship", trackingNumber: "2", carrier: "UPS", now: T1 }).thenThrows(OrderAlreadyShippedError));
  it("delivers a shipped order", () => spec.given([placed, confirmed, shipped]).when({ type: "deliver", now: T1 }).then(delivered));
  it("ends DELIVERED with the tracking kept", () =>
    spec
      .given([placed, confirmed, shipped])
      .when({ type: "deliver", now: T1 })
      .thenState(expectFields({ status: "DELIVERED", trackingNumber: "1Z999", carrier: "UPS" })));
  it("does nothing for a delivered order", () => spec.given([placed, confirmed, shipped, delivered]).when({ type: "deliver", now: T1 }).thenNothingHappens());
  it("refuses to deliver an order not shipped", () => spec.given([placed, confirmed]).when({ type: "deliver", now: T1 }).thenThrows(OrderNotShippedError));
  it("refuses to deliver a cancelled order", () =>
    spec
      .given([placed, cancelled("PENDING")])
      .when({ type: "deliver", now: T1 })
      .thenThrows(OrderCancelledError));
});

// thenState compares with toEqual; these build the expected state from a partial one.
function expectStatus(status: string) {
  return expect.objectContaining({ status }) as never;
}
function expectFields(fields: Record<string, unknown>) {
  return expect.objectContaining(fields) as never;
}
