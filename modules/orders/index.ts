import { type Appender, type Db, defineModule, loadState } from "../../src/platform.ts";
import type { InventoryApi } from "../inventory/index.ts";
import { type OrderWithVersion, orderAggregate, withVersion } from "./commands.ts";
import { orderEvents } from "./events.ts";
import { orderViewsProjection } from "./projection.ts";
import { type CustomerHistory, customerHistories } from "./queries.ts";
import { ordersRoutes } from "./routes.ts";
import { orderSaga } from "./saga/handler.ts";
import { sagaTimer } from "./saga/timer.ts";

export type { OrderWithVersion } from "./commands.ts";
export type { CancellationCode, Order, OrderStatus } from "./order.ts";
export type { CustomerHistory } from "./queries.ts";
export type { SagaStatus, SagaStep, StepName, StepStatus } from "./saga/process.ts";
export type { SagaView } from "./saga/queries.ts";

/** DEFAULT_PAYMENT_TIMEOUT_MS is how long the saga waits for a payment's answer unless told otherwise (30 s). */
export const DEFAULT_PAYMENT_TIMEOUT_MS = 30_000;

/** OrdersApi is the read API other modules may call synchronously. */
export interface OrdersApi {
  /** getOrder returns an order's current state from its stream, or null when there is none. */
  getOrder(id: string): Promise<OrderWithVersion | null>;
  /**
   * getCustomerHistories answers, for each id asked, the customer's orders placed and not
   * cancelled and their total (lifetime value, cents), from the read model (kept by the
   * `orders.views` projection, so it trails the streams by the projection's lag). Zeros for a
   * customer without such orders.
   *
   * @example const [h] = await orders.api.getCustomerHistories([userId]); // { customerId, orderCount: 3, lifetimeCents: 12_500 }
   */
  getCustomerHistories(customerIds: readonly string[]): Promise<CustomerHistory[]>;
}

/** OrdersModuleDeps are the orders module's dependencies, given by the composition root. */
export interface OrdersModuleDeps {
  db: Db;
  outbox: Appender;
  /** The catalog that prices the lines at placement. */
  inventory: Pick<InventoryApi, "getProducts">;
  clock?: () => Date;
  /** Snapshot an order's stream every this many events (default 50). */
  snapshotEvery?: number;
  /** How long the saga waits for a payment's answer before treating it as failed (default 30 s). */
  paymentTimeoutMs?: number;
  /** How often the saga timer looks for deadlines due (default: a quarter of the payment timeout, 50 ms to 1 s). */
  timerIntervalMs?: number;
  /** Told about a saga timer round that failed (it is retried on the next tick). */
  onBackgroundError?: (err: unknown) => void;
}

/**
 * createOrdersModule builds the orders module: event-sourced orders, their read model, and the
 * order saga (a durable process manager driven by inventory's and payments' events, with its
 * payment deadline fired by a timer).
 *
 * @example const orders = createOrdersModule({ db, outbox, inventory: inventoryModule.api });
 */
export function createOrdersModule(deps: OrdersModuleDeps) {
  const orders = orderAggregate(deps);
  const paymentTimeoutMs = deps.paymentTimeoutMs ?? DEFAULT_PAYMENT_TIMEOUT_MS;
  const timerIntervalMs = deps.timerIntervalMs ?? Math.min(1000, Math.max(50, Math.round(paymentTimeoutMs / 4)));
  const api: OrdersApi = {
    async getOrder(id) {
      const read = await loadState(orders, id);
      return read.state.status === "NONE" ? null : withVersion(read);
    },
    getCustomerHistories: (customerIds) => customerHistories(deps.db, customerIds),
  };
  return defineModule<OrdersApi>({
    name: "orders",
    events: orderEvents,
    api,
    routes: (router) => ordersRoutes(router, deps, orders),
    subscriptions: [orderViewsProjection, orderSaga({ orders, paymentTimeoutMs, clock: deps.clock })],
    background: [sagaTimer({ db: deps.db, outbox: deps.outbox, intervalMs: timerIntervalMs, onError: deps.onBackgroundError })],
  });
}
