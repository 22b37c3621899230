/**
 * The order saga as a pure process manager: `react(state, event)` takes the saga's state and one
 * event of the flow and returns the next state and the actions to take (confirm or cancel the
 * order, set or clear the payment deadline). No storage and no clock: times come from the events,
 * so a redelivered event reacts exactly as the first time. `./handler.ts` keeps the state in
 * Postgres and performs the actions in the delivery's transaction.
 *
 * The flow: ReserveInventory -> ProcessPayment -> ConfirmOrder -> NotifyCustomer. Inventory and
 * payments do the work on their own (they react to `order.created` and `inventory.reserved`);
 * the saga decides the outcome and owns the compensation:
 *
 * - reservation failed -> cancel (out of stock, or a product gone);
 * - payment failed, or not answered within the payment timeout -> cancel;
 * - any cancellation (the saga's, the customer's or an admin's, before or after confirmation)
 *   -> CancelOrder, ReleaseInventory (inventory releases or returns the stock on
 *   `order.cancelled`), RefundPayment (payments refunds a charge, or calls off one that took no
 *   money), NotifyCancellation (the `order.cancelled` event carries the reason in words). The
 *   saga waits for each compensation's event, then ends CANCELLED.
 */
import { assertNever } from "../../../src/platform.ts";
import type { CancellationCode } from "../order.ts";

export const SAGA_STATUSES = ["RUNNING", "COMPLETED", "COMPENSATING", "CANCELLED"] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];
export const STEP_STATUSES = ["pending", "running", "succeeded", "failed", "skipped"] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const STEP_NAMES = [
  "reserveInventory",
  "processPayment",
  "confirmOrder",
  "notifyCustomer",
  "cancelOrder",
  "releaseInventory",
  "refundPayment",
  "notifyCancellation",
] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** SagaStep is one step of the flow or of its compensation, with when it started and ended. */
export interface SagaStep {
  name: StepName;
  kind: "action" | "compensation";
  status: StepStatus;
  startedAt: string | null;
  finishedAt: string | null;
  detail: string | null;
}

/** SagaState is one order's saga. JSON-safe: it is stored as it is. */
export interface SagaState {
  orderId: string;
  customerId: string;
  status: SagaStatus;
  steps: SagaStep[];
  /** The products' names, to say in words what was out of stock. */
  productNames: Record<string, string>;
  /** How the payment ended, as far as the saga knows. */
  payment: "none" | "processed" | "failed" | "timed_out" | "voided";
  paymentDueAt: string | null;
  startedAt: string;
  updatedAt: string;
}

/** SagaInput is an event the saga reacts to: its type, data and time (the envelope's). */
export type SagaInput = { time: string } & (
  | {
      type: "order.created";
      data: { orderId: string; customerId: string; items: { productId: string; name: string }[] };
    }
  | { type: "order.cancelled"; data: { orderId: string; reason: string; previousStatus: "PENDING" | "CONFIRMED" } }
  | { type: "order.confirmed"; data: { orderId: string } }
  | { type: "inventory.reserved"; data: { orderId: string } }
  | {
      type: "inventory.reservation_failed";
      data:
        | { orderId: string; reason: "product_not_found"; productIds: string[] }
        | { orderId: string; reason: "insufficient_stock"; lines: { productId: string; requested: number; available: number }[] };
    }
  | { type: "inventory.released"; data: { orderId: string; from: "reserved" | "committed" } }
  | { type: "payment.processed"; data: { orderId: string; amountCents: number; currency: string; chargeId: string } }
  | { type: "payment.failed"; data: { orderId: string; message: string } }
  | { type: "payment.refunded"; data: { orderId: string; amountCents: number; currency: string; refundId: string } }
  | { type: "payment.voided"; data: { orderId: string } }
  | { type: "order-saga.payment_timed_out"; data: { orderId: string; timeoutMs: number } }
  /** The saga's own confirmation was refused: the order had been cancelled meanwhile. */
  | { type: "confirmation_refused"; data: { orderId: string } }
);

/** SagaAction is what the saga asks its runner to do. */
export type SagaAction =
  | { type: "confirm" }
  | { type: "cancel"; reason: string; code: CancellationCode }
  | { type: "setPaymentDeadline"; dueAt: string; timeoutMs: number }
  | { type: "clearPaymentDeadline" };

export interface Reaction {
  /** null: not a saga's event (an order placed before the saga existed). */
  state: SagaState | null;
  actions: SagaAction[];
}

const step = (name: StepName, kind: SagaStep["kind"], status: StepStatus = "pending", at: string | null = null): SagaStep => ({
  name,
  kind,
  status,
  startedAt: status === "pending" ? null : at,
  finishedAt: status === "pending" || status === "running" ? null : at,
  detail: null,
});

/** move sets a step's status (if it is in one of `from`) at time `at`; returns whether it moved. */
function move(s: SagaState, name: StepName, from: readonly StepStatus[], to: StepStatus, at: string, detail?: string): boolean {
  const st = s.steps.find((x) => x.name === name);
  if (!st || !from.includes(st.status)) return false;
  st.status = to;
  if (to === "running" || st.startedAt === null) st.startedAt = at;
  if (to !== "running" && to !== "pending") st.finishedAt = at;
  if (detail !== undefined) st.detail = detail;
  return true;
}

const OPEN: readonly StepStatus[] = ["pending", "running"];
const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`;

/** outOfStockReason says in words why inventory refused an order. */
export function outOfStockReason(s: Pick<SagaState, "productNames">, data: Extract<SagaInput, { type: "inventory.reservation_failed" }>["data"]): string {
  if (data.reason === "product_not_found") return "a product in the order no longer exists";
  const lines = data.lines.map((l) => `${s.productNames[l.productId] ?? l.productId} (requested ${l.requested}, available ${l.available})`);
  return `out of stock: ${lines.join(", ")}`;
}

/** timeoutWords says a payment timeout in words: "30 s", "1.5 s", "250 ms". */
export const timeoutWords = (ms: number) => (ms >= 1000 ? `${Number((ms / 1000).toFixed(1))} s` : `${ms} ms`);

/** react is the saga: the next state and the actions one event implies. Pure. */
export function react(prev: SagaState | null, event: SagaInput, paymentTimeoutMs: number): Reaction {
  const at = event.time;
  if (event.type === "order.created") {
    if (prev) return { state: prev, actions: [] };
    const d = event.data;
    return {
      state: {
        orderId: d.orderId,
        customerId: d.customerId,
        status: "RUNNING",
        steps: [
          step("reserveInventory", "action", "running", at),
          step("processPayment", "action"),
          step("confirmOrder", "action"),
          step("notifyCustomer", "action"),
        ],
        productNames: Object.fromEntries(d.items.map((i) => [i.productId, i.name])),
        payment: "none",
        paymentDueAt: null,
        startedAt: at,
        updatedAt: at,
      },
      actions: [],
    };
  }
  if (!prev) return { state: null, actions: [] };
  const s: SagaState = structuredClone(prev);
  const actions: SagaAction[] = [];
  const running = s.status === "RUNNING";
  const clearDeadline = () => {
    if (s.paymentDueAt === null) return;
    s.paymentDueAt = null;
    actions.push({ type: "clearPaymentDeadline" });
  };

  switch (event.type) {
    case "inventory.reserved":
      move(s, "reserveInventory", OPEN, "succeeded", at, "stock reserved");
      if (running) {
        if (move(s, "processPayment", ["pending"], "running", at)) {
          s.paymentDueAt = new Date(Date.parse(at) + paymentTimeoutMs).toISOString();
          actions.push({ type: "setPaymentDeadline", dueAt: s.paymentDueAt, timeoutMs: paymentTimeoutMs });
        }
      } else {
        // Cancelled before the stock was reserved: inventory releases it on the cancellation.
        move(s, "releaseInventory", ["pending"], "running", at);
      }
      break;
    case "inventory.reservation_failed": {
      const reason = outOfStockReason(s, event.data);
      move(s, "reserveInventory", OPEN, "failed", at, reason);
      move(s, "releaseInventory", OPEN, "skipped", at, "nothing was reserved");
      if (running) {
        move(s, "processPayment", OPEN, "skipped", at);
        move(s, "confirmOrder", OPEN, "skipped", at);
        actions.push({ type: "cancel", reason, code: event.data.reason === "product_not_found" ? "product_not_found" : "out_of_stock" });
      }
      break;
    }
    case "payment.processed":
      s.payment = "processed";
      clearDeadline();
      move(s, "processPayment", OPEN, "succeeded", at, `charged ${money(event.data.amountCents, event.data.currency)} (${event.data.chargeId})`);
      if (running) {
        actions.push({ type: "confirm" });
        move(s, "confirmOrder", OPEN, "succeeded", at, "order confirmed");
        move(s, "notifyCustomer", OPEN, "succeeded", at, "order.confirmed published");
        s.status = "COMPLETED";
      } else {
        move(s, "refundPayment", ["pending"], "running", at);
      }
      break;
    case "confirmation_refused":
      // The customer cancelled while the payment was under way: the cancellation's compensation follows.
      move(s, "confirmOrder", ["succeeded"], "skipped", at, "the order was cancelled meanwhile");
      move(s, "notifyCustomer", ["succeeded"], "skipped", at, "the order was cancelled meanwhile");
      if (s.status === "COMPLETED") s.status = "RUNNING";
      break;
    case "payment.failed":
      s.payment = "failed";
      clearDeadline();
      move(s, "processPayment", OPEN, "failed", at, event.data.message);
      move(s, "refundPayment", OPEN, "skipped", at, "no money was taken");
      if (running) {
        move(s, "confirmOrder", OPEN, "skipped", at);
        actions.push({ type: "cancel", reason: `payment failed: ${event.data.message}`, code: "payment_failed" });
      }
      break;
    case "order-saga.payment_timed_out":
      if (!running || s.payment !== "none") break;
      s.payment = "timed_out";
      s.paymentDueAt = null;
      if (move(s, "processPayment", ["running"], "failed", at, `no answer from the payment processor within ${timeoutWords(event.data.timeoutMs)}`)) {
        move(s, "confirmOrder", OPEN, "skipped", at);
        actions.push({ type: "cancel", reason: `payment not confirmed within ${timeoutWords(event.data.timeoutMs)}`, code: "payment_timeout" });
      }
      break;
    case "order.confirmed":
      // Normally the saga's own confirmation, already recorded. An order confirmed without the
      // saga's payment step (placed before payments existed, replayed) completes here instead,
      // so that its payment deadline cannot cancel it.
      if (!running) break;
      clearDeadline();
      if (s.payment === "none") move(s, "processPayment", OPEN, "skipped", at, "confirmed without a payment step");
      move(s, "confirmOrder", OPEN, "succeeded", at, "order confirmed");
      move(s, "notifyCustomer", OPEN, "succeeded", at, "order.confirmed published");
      s.status = "COMPLETED";
      break;
    case "order.cancelled": {
      if (s.status === "COMPENSATING" || s.status === "CANCELLED") break;
      clearDeadline();
      s.status = "COMPENSATING";
      move(s, "confirmOrder", ["pending"], "skipped", at);
      move(s, "notifyCustomer", ["pending"], "skipped", at);
      // A payment not settled yet is settled by payments' answer to the cancellation (voided, or charged and refunded).
      const reserve = s.steps.find((x) => x.name === "reserveInventory")!.status;
      const release: SagaStep =
        reserve === "succeeded"
          ? step("releaseInventory", "compensation", "running", at)
          : reserve === "running"
            ? step("releaseInventory", "compensation", "pending")
            : { ...step("releaseInventory", "compensation", "skipped", at), detail: "nothing was reserved" };
      const refund: SagaStep =
        s.payment === "processed"
          ? step("refundPayment", "compensation", "running", at)
          : s.payment === "failed"
            ? { ...step("refundPayment", "compensation", "skipped", at), detail: "no money was taken" }
            : step("refundPayment", "compensation", "pending");
      s.steps.push({ ...step("cancelOrder", "compensation", "succeeded", at), detail: event.data.reason }, release, refund, {
        ...step("notifyCancellation", "compensation", "succeeded", at),
        detail: "order.cancelled published with the reason",
      });
      break;
    }
    case "inventory.released":
      move(s, "releaseInventory", OPEN, "succeeded", at, event.data.from === "committed" ? "committed stock returned" : "reservation released");
      break;
    case "payment.refunded":
      move(s, "refundPayment", OPEN, "succeeded", at, `refunded ${money(event.data.amountCents, event.data.currency)} (${event.data.refundId})`);
      break;
    case "payment.voided":
      s.payment = "voided";
      move(s, "processPayment", OPEN, "skipped", at, "called off: the order was cancelled");
      move(s, "refundPayment", OPEN, "skipped", at, "no money was taken");
      break;
    default:
      assertNever(event);
  }
  if (s.status === "COMPENSATING" && !s.steps.some((x) => x.kind === "compensation" && OPEN.includes(x.status))) s.status = "CANCELLED";
  // An event that changed nothing (a repeat, a late answer) leaves the state as it was, time included.
  if (actions.length === 0 && JSON.stringify(s) === JSON.stringify(prev)) return { state: prev, actions };
  s.updatedAt = at;
  return { state: s, actions };
}
