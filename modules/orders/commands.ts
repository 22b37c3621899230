import { randomUUIDv7 } from "bun";
import {
  type Appender,
  assertNever,
  type CommandResult,
  type Db,
  type EventSourced,
  eventSourced,
  handleCommand,
  type Loaded,
  type NewEvent,
  StreamVersionConflictError,
  type Tx,
} from "../../src/platform.ts";
import type { InventoryApi } from "../inventory/index.ts";
import { OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered, OrderShipped, type OrderStreamEvent, orderStreamEvents } from "./events.ts";
import { type Order, type OrderCommand, type OrderState, order, type ShippingAddress } from "./order.ts";

export interface OrdersDeps {
  db: Db;
  outbox: Appender;
  inventory: Pick<InventoryApi, "getProducts">;
  clock?: () => Date;
  /** Snapshot every this many events (default 50). */
  snapshotEvery?: number;
}

/** OrderAggregate is the order decider bound to the event log. */
export type OrderAggregate = EventSourced<OrderState, OrderCommand, OrderStreamEvent>;

/** orderAggregate binds the decider to the log; streams are `order-<id>`. */
export const orderAggregate = (deps: OrdersDeps): OrderAggregate =>
  eventSourced({ name: "order", decider: order, events: orderStreamEvents, db: deps.db, outbox: deps.outbox, snapshotEvery: deps.snapshotEvery });

/** OrderWithVersion is an order with its stream version (what the API answers). */
export type OrderWithVersion = Order & { version: number };

/** integrationEvents are the public events that announce what a command did to the other modules. */
function integrationEvents(state: OrderState, events: OrderStreamEvent[]): NewEvent[] {
  if (state.status === "NONE") return [];
  const subject = { subject: state.id };
  const { id: orderId, customerId } = state;
  return events.map((e): NewEvent => {
    switch (e.type) {
      case "order-stream.placed": {
        const { placedAt: _, ...data } = e.data;
        return OrderCreated.with(data, subject);
      }
      case "order-stream.confirmed":
        return OrderConfirmed.with({ orderId, customerId, totalCents: state.totalCents, currency: state.currency }, subject);
      case "order-stream.cancelled":
        return OrderCancelled.with(
          { orderId, customerId, reason: e.data.reason, ...(e.data.code ? { code: e.data.code } : {}), previousStatus: e.data.previousStatus },
          subject,
        );
      case "order-stream.shipped":
        return OrderShipped.with({ orderId, customerId, trackingNumber: e.data.trackingNumber, carrier: e.data.carrier }, subject);
      case "order-stream.delivered":
        return OrderDelivered.with({ orderId, customerId }, subject);
      default:
        return assertNever(e);
    }
  });
}

const MAX_ATTEMPTS = 5;

/**
 * runOrderCommand handles a command and appends the public events it implies in the same
 * transaction, so the stream and the integration events commit together. In its own transaction
 * a version conflict re-reads and decides again (up to 5 times, then 409); in the caller's
 * (`tx`, a subscription's) it throws (at once, or at commit with `inTx.writeBehind`) and the
 * delivery is retried. `inTx.loaded` is the order's stream as the caller read it in `tx`.
 */
export async function runOrderCommand(
  orders: OrderAggregate,
  orderId: string,
  command: OrderCommand,
  tx?: Tx,
  inTx: { loaded?: Loaded<OrderState>; writeBehind?: boolean } = {},
): Promise<CommandResult<OrderState, OrderStreamEvent>> {
  // A placement's order id was just made: there is no stream to read (on a retry after a conflict, read it).
  let newStream = command.type === "place";
  // The public events go in the stream's insert (`alongside`): one statement for both. In its
  // own transaction that insert is write-behind: it travels with the COMMIT (a placement is then
  // one round trip: BEGIN, the insert, COMMIT), and a conflict fails the commit with
  // StreamVersionConflictError, retried below.
  const once = (t: Tx) => handleCommand(orders, orderId, command, { tx: t, newStream, alongside: integrationEvents, ...(tx ? inTx : { writeBehind: true }) });
  if (tx) return once(tx);
  for (let n = 1; ; n++) {
    try {
      return await orders.db.transaction(once);
    } catch (err) {
      if (!(err instanceof StreamVersionConflictError) || n >= MAX_ATTEMPTS) throw err;
      newStream = false;
    }
  }
}

/** withVersion shapes a command's outcome for the API. */
export const withVersion = (r: { state: OrderState; version: number }): OrderWithVersion => ({ ...(r.state as Order), version: r.version });

export interface PlaceOrderInput {
  customerId: string;
  items: { productId: string; quantity: number }[];
  shippingAddress: ShippingAddress;
  paymentMethod: string;
}

/**
 * placeOrder prices the lines from the catalog (any client price never reaches here), places the
 * order (PENDING) and publishes `order.created`, which starts the reservation.
 */
export async function placeOrder(deps: OrdersDeps, orders: OrderAggregate, input: PlaceOrderInput): Promise<OrderWithVersion> {
  const products = await deps.inventory.getProducts([...new Set(input.items.map((i) => i.productId))]);
  const orderId = randomUUIDv7();
  const result = await runOrderCommand(orders, orderId, {
    type: "place",
    orderId,
    customerId: input.customerId,
    lines: input.items,
    catalog: products.map((p) => ({ productId: p.id, name: p.name, unitPriceCents: p.priceCents })),
    shippingAddress: input.shippingAddress,
    paymentMethod: input.paymentMethod,
    now: now(deps.clock),
  });
  return withVersion(result);
}

/** now is the clock's time as an ISO string, for commands. */
export const now = (clock?: () => Date) => (clock?.() ?? new Date()).toISOString();
