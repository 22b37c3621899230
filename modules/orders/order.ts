/**
 * The order aggregate as a decider: pure `decide` and `evolve`, no storage, no clock (the time
 * comes in the command). Lifecycle PENDING -> CONFIRMED -> SHIPPED -> DELIVERED, and CANCELLED
 * from PENDING or CONFIRMED (never after shipping).
 */
import type { z } from "zod";
import { assertNever, type Decider, type FieldError } from "../../src/platform.ts";
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
} from "./errors.ts";
import type { CancellationCodeSchema, OrderLineSchema, OrderStreamEvent, ShippingAddressSchema } from "./events.ts";

/** MAX_LINES and MAX_QUANTITY are the order's size rules. */
export const MAX_LINES = 50;
export const MAX_QUANTITY = 100;
/** CURRENCY is the shop's one currency; amounts are integer cents of it. */
export const CURRENCY = "USD";

export type OrderStatus = "PENDING" | "CONFIRMED" | "SHIPPED" | "DELIVERED" | "CANCELLED";
export type OrderLine = z.infer<typeof OrderLineSchema>;
export type ShippingAddress = z.infer<typeof ShippingAddressSchema>;
export type CancellationCode = z.infer<typeof CancellationCodeSchema>;

/** Order is an order as the API shows it (without its version, which comes from the stream). */
export interface Order {
  id: string;
  customerId: string;
  status: OrderStatus;
  items: OrderLine[];
  totalCents: number;
  currency: string;
  shippingAddress: ShippingAddress;
  paymentMethod: string;
  createdAt: string;
  updatedAt: string;
  cancellationReason: string | null;
  trackingNumber: string | null;
  carrier: string | null;
}

/** OrderState is the decider's state: nothing before placement, then the order. JSON-safe for snapshots. */
export type OrderState = { status: "NONE" } | Order;

/** CatalogEntry is a product's name and price as the catalog has them when the order is placed. */
export interface CatalogEntry {
  productId: string;
  name: string;
  unitPriceCents: number;
}

export type OrderCommand =
  | {
      type: "place";
      orderId: string;
      customerId: string;
      /** What the customer asked for; any price they sent was already dropped. */
      lines: { productId: string; quantity: number }[];
      /** The catalog entries of the products asked for, read at placement. */
      catalog: CatalogEntry[];
      shippingAddress: ShippingAddress;
      paymentMethod: string;
      now: string;
    }
  | { type: "confirm"; now: string }
  | { type: "cancel"; reason: string; code?: CancellationCode; now: string }
  | { type: "ship"; trackingNumber: string; carrier: string; now: string }
  | { type: "deliver"; now: string };

function exists(state: OrderState): Order {
  if (state.status === "NONE") throw new OrderNotFoundError();
  return state;
}

/** priceLines checks the size rules and prices every line from the catalog, in integer cents. */
function priceLines(lines: { productId: string; quantity: number }[], catalog: CatalogEntry[]): OrderLine[] {
  const errors: FieldError[] = [];
  if (lines.length < 1) errors.push({ path: "items", message: "an order needs at least one line" });
  if (lines.length > MAX_LINES) errors.push({ path: "items", message: `an order has at most ${MAX_LINES} lines` });
  const seen = new Set<string>();
  lines.forEach((l, i) => {
    if (!Number.isInteger(l.quantity) || l.quantity < 1 || l.quantity > MAX_QUANTITY) {
      errors.push({ path: `items.${i}.quantity`, message: `quantity must be a whole number from 1 to ${MAX_QUANTITY}` });
    }
    if (seen.has(l.productId)) errors.push({ path: `items.${i}.productId`, message: "each product appears once per order; raise its quantity instead" });
    seen.add(l.productId);
  });
  if (errors.length > 0) throw new InvalidOrderError("the order breaks the order rules", errors);
  const prices = new Map(catalog.map((c) => [c.productId, c]));
  const unknown = lines.filter((l) => !prices.has(l.productId)).map((l) => l.productId);
  if (unknown.length > 0) throw new UnknownProductsError(unknown);
  return lines.map((l) => {
    const p = prices.get(l.productId)!;
    return { productId: l.productId, name: p.name, quantity: l.quantity, unitPriceCents: p.unitPriceCents, lineTotalCents: p.unitPriceCents * l.quantity };
  });
}

/** order is the decider. Every switch ends in assertNever, so a new command or event must be handled. */
export const order: Decider<OrderState, OrderCommand, OrderStreamEvent> = {
  initialState: () => ({ status: "NONE" }),

  evolve(state, event) {
    switch (event.type) {
      case "order-stream.placed": {
        const d = event.data;
        return {
          id: d.orderId,
          customerId: d.customerId,
          status: "PENDING",
          items: d.items,
          totalCents: d.totalCents,
          currency: d.currency,
          shippingAddress: d.shippingAddress,
          paymentMethod: d.paymentMethod,
          createdAt: d.placedAt,
          updatedAt: d.placedAt,
          cancellationReason: null,
          trackingNumber: null,
          carrier: null,
        };
      }
      case "order-stream.confirmed":
        return { ...exists(state), status: "CONFIRMED", updatedAt: event.data.confirmedAt };
      case "order-stream.cancelled":
        return { ...exists(state), status: "CANCELLED", cancellationReason: event.data.reason, updatedAt: event.data.cancelledAt };
      case "order-stream.shipped":
        return { ...exists(state), status: "SHIPPED", trackingNumber: event.data.trackingNumber, carrier: event.data.carrier, updatedAt: event.data.shippedAt };
      case "order-stream.delivered":
        return { ...exists(state), status: "DELIVERED", updatedAt: event.data.deliveredAt };
      default:
        return assertNever(event);
    }
  },

  decide(command, state) {
    switch (command.type) {
      case "place": {
        if (state.status !== "NONE") throw new OrderAlreadyExistsError();
        const items = priceLines(command.lines, command.catalog);
        return {
          type: "order-stream.placed",
          data: {
            orderId: command.orderId,
            customerId: command.customerId,
            items,
            totalCents: items.reduce((sum, l) => sum + l.lineTotalCents, 0),
            currency: CURRENCY,
            shippingAddress: command.shippingAddress,
            paymentMethod: command.paymentMethod,
            placedAt: command.now,
          },
        };
      }
      case "confirm": {
        const o = exists(state);
        if (o.status === "CONFIRMED") return [];
        if (o.status !== "PENDING") throw new OrderNotPendingError(o.status);
        return { type: "order-stream.confirmed", data: { orderId: o.id, confirmedAt: command.now } };
      }
      case "cancel": {
        const o = exists(state);
        if (o.status === "CANCELLED") return [];
        if (o.status === "SHIPPED" || o.status === "DELIVERED") throw new OrderAlreadyShippedError();
        return {
          type: "order-stream.cancelled",
          data: { orderId: o.id, reason: command.reason, ...(command.code ? { code: command.code } : {}), previousStatus: o.status, cancelledAt: command.now },
        };
      }
      case "ship": {
        const o = exists(state);
        if (o.status === "CANCELLED") throw new OrderCancelledError();
        if (o.status === "PENDING") throw new OrderNotConfirmedError();
        if (o.status !== "CONFIRMED") throw new OrderAlreadyShippedError();
        return {
          type: "order-stream.shipped",
          data: { orderId: o.id, trackingNumber: command.trackingNumber, carrier: command.carrier, shippedAt: command.now },
        };
      }
      case "deliver": {
        const o = exists(state);
        if (o.status === "DELIVERED") return [];
        if (o.status === "CANCELLED") throw new OrderCancelledError();
        if (o.status !== "SHIPPED") throw new OrderNotShippedError();
        return { type: "order-stream.delivered", data: { orderId: o.id, deliveredAt: command.now } };
      }
      default:
        return assertNever(command);
    }
  },
  evolveVersion: 1,
};
