import { type Appender, type Db, defineModule } from "../../src/platform.ts";
import { inventoryEvents } from "./events.ts";
import { stockOnOrderEvents } from "./handlers.ts";
import type { Product } from "./product.ts";
import { getProducts } from "./queries.ts";
import { inventoryRoutes } from "./routes.ts";

export type { Product } from "./product.ts";

/** InventoryApi is the read API other modules may call synchronously (orders prices its lines with it). */
export interface InventoryApi {
  /** getProducts returns the products with these ids; unknown ids are left out. */
  getProducts(ids: readonly string[]): Promise<Product[]>;
}

/** InventoryModuleDeps are the inventory module's dependencies, given by the composition root. */
export interface InventoryModuleDeps {
  db: Db;
  outbox: Appender;
}

/**
 * createInventoryModule builds the inventory module: the catalog, its stock, and the
 * reservations that follow each order's events.
 *
 * @example const inventory = createInventoryModule({ db, outbox });
 */
export function createInventoryModule(deps: InventoryModuleDeps) {
  const api: InventoryApi = { getProducts: (ids) => getProducts(deps.db, ids) };
  return defineModule<InventoryApi>({
    name: "inventory",
    events: inventoryEvents,
    api,
    routes: (router) => inventoryRoutes(router, deps),
    subscriptions: [stockOnOrderEvents(deps.outbox)],
  });
}
