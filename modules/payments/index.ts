import { type Appender, type Db, defineModule } from "../../src/platform.ts";
import type { OrdersApi } from "../orders/index.ts";
import { paymentsOnOrderEvents } from "./charges.ts";
import { paymentEvents } from "./events.ts";
import type { PaymentProvider } from "./provider.ts";
import { getPayment, type Payment } from "./queries.ts";
import { paymentsRoutes } from "./routes.ts";

export { type ChargeRequest, type ChargeResult, createSimulatedProvider, type PaymentProvider, type RefundRequest, type RefundResult } from "./provider.ts";
export type { Payment } from "./queries.ts";

/** PaymentsApi is the read API other modules may call synchronously. */
export interface PaymentsApi {
  /** getPayment returns an order's payment, or null when none was opened. */
  getPayment(orderId: string): Promise<Payment | null>;
}

/** PaymentsModuleDeps are the payments module's dependencies, given by the composition root. */
export interface PaymentsModuleDeps {
  db: Db;
  outbox: Appender;
  /** The card processor (the simulated test-mode one outside production). */
  provider: PaymentProvider;
  /** Who owns an order: the orders module's read API. */
  orders: Pick<OrdersApi, "getOrder">;
  /** How long one processor call may take inside an event delivery (default 2 s). */
  callTimeoutMs?: number;
}

/**
 * createPaymentsModule builds the payments module: it charges an order once its stock is
 * reserved, refunds it when a paid order is cancelled, and never calls orders (it reacts to events).
 *
 * @example const payments = createPaymentsModule({ db, outbox, provider: createSimulatedProvider(), orders: orders.api });
 */
export function createPaymentsModule(deps: PaymentsModuleDeps) {
  const api: PaymentsApi = {
    getPayment: (orderId) => getPayment(deps.db, orderId).catch((err) => (err?.code === "PAYMENTS.NOT_FOUND" ? null : Promise.reject(err))),
  };
  return defineModule<PaymentsApi>({
    name: "payments",
    events: paymentEvents,
    api,
    routes: (router) => paymentsRoutes(router, deps),
    subscriptions: [paymentsOnOrderEvents({ outbox: deps.outbox, provider: deps.provider, callTimeoutMs: deps.callTimeoutMs ?? 2000 })],
  });
}
