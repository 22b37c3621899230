import { type Appender, type Db, defineModule, loadState } from "../../src/platform.ts";
import type { InventoryApi } from "../inventory/index.ts";
import { type OrderWithVersion, orderAggregate, withVersion } from "./commands.ts";
import { orderEvents } from "./events.ts";
import { fulfilmentOnInventory } from "./fulfilment.ts";
import { orderViewsProjection } from "./projection.ts";
import { ordersRoutes } from "./routes.ts";

export type { OrderWithVersion } from "./commands.ts";
export type { Order, OrderStatus } from "./order.ts";

/** OrdersApi is the read API other modules may call synchronously. */
export interface OrdersApi {
  /** getOrder returns an order's current state from its stream, or null when there is none. */
  getOrder(id: string): Promise<OrderWithVersion | null>;
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
}

/**
 * createOrdersModule builds the orders module: event-sourced orders, their read model, and the
 * fulfilment process that follows inventory's answers.
 *
 * @example const orders = createOrdersModule({ db, outbox, inventory: inventoryModule.api });
 */
export function createOrdersModule(deps: OrdersModuleDeps) {
  const orders = orderAggregate(deps);
  const api: OrdersApi = {
    async getOrder(id) {
      const read = await loadState(orders, id);
      return read.state.status === "NONE" ? null : withVersion(read);
    },
  };
  return defineModule<OrdersApi>({
    name: "orders",
    events: orderEvents,
    api,
    routes: (router) => ordersRoutes(router, deps, orders),
    subscriptions: [orderViewsProjection, fulfilmentOnInventory(orders, deps.outbox, deps.clock)],
  });
}
