import { z } from "zod";
import { type DeciderEventOf, defineEvent } from "../../src/platform.ts";

// Shapes shared by the stream events and the integration events. Money is in integer cents.
const Cents = z.number().int().nonnegative();

/** OrderLineSchema is one priced line of an order, as fixed at placement. */
export const OrderLineSchema = z.object({
  productId: z.uuid(),
  name: z.string(),
  quantity: z.number().int().min(1).max(100),
  unitPriceCents: Cents,
  lineTotalCents: Cents,
});

/** ShippingAddressSchema is where an order goes. */
export const ShippingAddressSchema = z.object({
  street: z.string().min(1).max(200),
  city: z.string().min(1).max(100),
  state: z.string().min(1).max(100),
  zipCode: z.string().min(1).max(20),
  country: z.string().min(2).max(56),
});

/** CancellationCodeSchema says why an order was cancelled, for machines (the reason says it in words). */
export const CancellationCodeSchema = z.enum(["requested", "out_of_stock", "product_not_found", "payment_failed", "payment_timeout"]);

const Placed = z.object({
  orderId: z.uuid(),
  customerId: z.uuid(),
  items: z.array(OrderLineSchema).min(1).max(50),
  totalCents: Cents,
  currency: z.string().length(3),
  shippingAddress: ShippingAddressSchema,
  paymentMethod: z.string(),
  placedAt: z.iso.datetime(),
});

// ---- The order aggregate's own stream: internal, the module's business. ----

/** OrderPlaced starts an order's stream (internal). */
export const OrderPlaced = defineEvent({
  source: "orders",
  type: "order-stream.placed",
  visibility: "internal",
  description: "An order was placed with its lines priced from the catalog.",
  schema: Placed,
});
/** OrderConfirmedInStream records the confirmation in the order's stream (internal). */
export const OrderConfirmedInStream = defineEvent({
  source: "orders",
  type: "order-stream.confirmed",
  visibility: "internal",
  description: "The order was confirmed.",
  schema: z.object({ orderId: z.uuid(), confirmedAt: z.iso.datetime() }),
});
/** OrderCancelledInStream records a cancellation in the order's stream (internal). */
export const OrderCancelledInStream = defineEvent({
  source: "orders",
  type: "order-stream.cancelled",
  visibility: "internal",
  description: "The order was cancelled.",
  schema: z.object({
    orderId: z.uuid(),
    reason: z.string().min(1).max(500),
    /** Absent on events written before codes existed. */
    code: CancellationCodeSchema.optional(),
    previousStatus: z.enum(["PENDING", "CONFIRMED"]),
    cancelledAt: z.iso.datetime(),
  }),
});
/** OrderShippedInStream records shipping in the order's stream (internal). */
export const OrderShippedInStream = defineEvent({
  source: "orders",
  type: "order-stream.shipped",
  visibility: "internal",
  description: "The order was handed to a carrier.",
  schema: z.object({ orderId: z.uuid(), trackingNumber: z.string(), carrier: z.string(), shippedAt: z.iso.datetime() }),
});
/** OrderDeliveredInStream records delivery in the order's stream (internal). */
export const OrderDeliveredInStream = defineEvent({
  source: "orders",
  type: "order-stream.delivered",
  visibility: "internal",
  description: "The order was delivered.",
  schema: z.object({ orderId: z.uuid(), deliveredAt: z.iso.datetime() }),
});

/** orderStreamEvents are the events an order's stream may hold. */
export const orderStreamEvents = [OrderPlaced, OrderConfirmedInStream, OrderCancelledInStream, OrderShippedInStream, OrderDeliveredInStream];
/** OrderStreamEvent is the order decider's event union. */
export type OrderStreamEvent = DeciderEventOf<(typeof orderStreamEvents)[number]>;

// ---- Integration events: the module's published contract. ----

/** OrderCreated is published when an order is placed: inventory reserves its lines, payments charge its total. */
export const OrderCreated = defineEvent({
  source: "orders",
  type: "order.created",
  visibility: "public",
  description: "An order was placed (status PENDING) with catalog prices.",
  schema: Placed.omit({ placedAt: true }),
});
/** OrderConfirmed is published when an order is confirmed: inventory turns its reservation into a stock decrement. */
export const OrderConfirmed = defineEvent({
  source: "orders",
  type: "order.confirmed",
  visibility: "public",
  description: "The order was confirmed.",
  schema: z.object({ orderId: z.uuid(), customerId: z.uuid(), totalCents: Cents, currency: z.string().length(3) }),
});
/** OrderCancelled is published when an order is cancelled: inventory releases or returns its stock. */
export const OrderCancelled = defineEvent({
  source: "orders",
  type: "order.cancelled",
  visibility: "public",
  description: "The order was cancelled, with the reason in words and as a code.",
  schema: z.object({
    orderId: z.uuid(),
    customerId: z.uuid(),
    /** Why, in words a customer can read ("out of stock: Gadget (requested 3, available 2)"). */
    reason: z.string(),
    /** Why, as a code: requested (by the customer or an admin), out_of_stock, product_not_found, payment_failed, payment_timeout. */
    code: CancellationCodeSchema.optional(),
    previousStatus: z.enum(["PENDING", "CONFIRMED"]),
  }),
});
/** OrderShipped is published when an order leaves the warehouse. */
export const OrderShipped = defineEvent({
  source: "orders",
  type: "order.shipped",
  visibility: "public",
  description: "The order was shipped, with its tracking number and carrier.",
  schema: z.object({ orderId: z.uuid(), customerId: z.uuid(), trackingNumber: z.string(), carrier: z.string() }),
});
/** OrderDelivered is published when an order reaches its customer. */
export const OrderDelivered = defineEvent({
  source: "orders",
  type: "order.delivered",
  visibility: "public",
  description: "The order was delivered.",
  schema: z.object({ orderId: z.uuid(), customerId: z.uuid() }),
});

// ---- The order saga's own events: internal. ----

/** OrderPaymentTimedOut is appended by the saga's timer when an order's payment deadline passed unanswered (internal). */
export const OrderPaymentTimedOut = defineEvent({
  source: "orders",
  type: "order-saga.payment_timed_out",
  visibility: "internal",
  description: "The order saga's payment deadline passed: the saga treats the payment as failed unless it was answered meanwhile.",
  schema: z.object({ orderId: z.uuid(), dueAt: z.iso.datetime(), timeoutMs: z.number().int().positive() }),
});

/** orderEvents lists every event the orders module appends, internal and public. */
export const orderEvents = [...orderStreamEvents, OrderCreated, OrderConfirmed, OrderCancelled, OrderShipped, OrderDelivered, OrderPaymentTimedOut];
