import { describe, expect, it } from "bun:test";
import { react, type SagaInput, type SagaState, timeoutWords } from "../../../modules/orders/saga/process.ts";

const ORDER = "0193a0c0-0000-7000-8000-000000000001";
const CUSTOMER = "0193a0c0-0000-7000-8000-000000000002";
const PRODUCT = "0193a0c0-0000-7000-8000-000000000003";
const TIMEOUT = 30_000;
const t = (s: number) => new Date(Date.UTC(2026, 11, 3, 10, 0, s)).toISOString();

const created: SagaInput = { type: "order.created", time: t(0), data: { orderId: ORDER, customerId: CUSTOMER, items: [{ productId: PRODUCT, name: "Lamp" }] } };
const reserved: SagaInput = { type: "inventory.reserved", time: t(1), data: { orderId: ORDER } };
const short: SagaInput = {
  type: "inventory.reservation_failed",
  time: t(1),
  data: { orderId: ORDER, reason: "insufficient_stock", lines: [{ productId: PRODUCT, requested: 3, available: 2 }] },
};
const paid: SagaInput = { type: "payment.processed", time: t(2), data: { orderId: ORDER, amountCents: 2500, currency: "USD", chargeId: "ch_1" } };
const declined: SagaInput = { type: "payment.failed", time: t(2), data: { orderId: ORDER, message: "the card was declined" } };
const timedOut: SagaInput = { type: "order-saga.payment_timed_out", time: t(31), data: { orderId: ORDER, timeoutMs: TIMEOUT } };
const cancelled = (previousStatus: "PENDING" | "CONFIRMED", reason = "changed my mind", s = 5): SagaInput => ({
  type: "order.cancelled",
  time: t(s),
  data: { orderId: ORDER, reason, previousStatus },
});
const released = (from: "reserved" | "committed"): SagaInput => ({ type: "inventory.released", time: t(6), data: { orderId: ORDER, from } });
const refunded: SagaInput = { type: "payment.refunded", time: t(7), data: { orderId: ORDER, amountCents: 2500, currency: "USD", refundId: "re_1" } };
const voided: SagaInput = { type: "payment.voided", time: t(7), data: { orderId: ORDER } };

/** given folds past events into a state (their actions already taken); when reacts to one more. */
const given = (...past: SagaInput[]) => {
  let state: SagaState | null = null;
  for (const e of past) state = react(state, e, TIMEOUT).state;
  return {
    when: (event: SagaInput) => {
      const r = react(state, event, TIMEOUT);
      const steps = Object.fromEntries((r.state?.steps ?? []).map((s) => [s.name, s.status]));
      return { ...r, steps };
    },
  };
};

describe("the order saga", () => {
  it("starts with the reservation running when the order is created", () => {
    const r = given().when(created);
    expect(r.state).toMatchObject({ status: "RUNNING", orderId: ORDER, customerId: CUSTOMER, startedAt: t(0) });
    expect(r.steps).toEqual({ reserveInventory: "running", processPayment: "pending", confirmOrder: "pending", notifyCustomer: "pending" });
    expect(r.actions).toEqual([]);
  });

  it("waits for the payment once stock is reserved, with a deadline PAYMENT_TIMEOUT after the reservation", () => {
    const r = given(created).when(reserved);
    expect(r.steps).toMatchObject({ reserveInventory: "succeeded", processPayment: "running" });
    expect(r.actions).toEqual([{ type: "setPaymentDeadline", dueAt: t(31), timeoutMs: TIMEOUT }]);
    expect(r.state?.paymentDueAt).toBe(t(31));
  });

  it("confirms the order when the payment is processed, and clears the deadline", () => {
    const r = given(created, reserved).when(paid);
    expect(r.actions).toEqual([{ type: "clearPaymentDeadline" }, { type: "confirm" }]);
    expect(r.state?.status).toBe("COMPLETED");
    expect(r.steps).toEqual({ reserveInventory: "succeeded", processPayment: "succeeded", confirmOrder: "succeeded", notifyCustomer: "succeeded" });
  });

  it("cancels for out of stock, in words with the product's name", () => {
    const r = given(created).when(short);
    expect(r.actions).toEqual([{ type: "cancel", reason: "out of stock: Lamp (requested 3, available 2)", code: "out_of_stock" }]);
    expect(r.steps).toMatchObject({ reserveInventory: "failed", processPayment: "skipped", confirmOrder: "skipped" });
  });

  it("cancels when the payment fails", () => {
    const r = given(created, reserved).when(declined);
    expect(r.actions).toEqual([{ type: "clearPaymentDeadline" }, { type: "cancel", reason: "payment failed: the card was declined", code: "payment_failed" }]);
    expect(r.steps).toMatchObject({ processPayment: "failed", confirmOrder: "skipped" });
  });

  it("treats a payment unanswered by its deadline as failed", () => {
    const r = given(created, reserved).when(timedOut);
    expect(r.actions).toEqual([{ type: "cancel", reason: "payment not confirmed within 30 s", code: "payment_timeout" }]);
    expect(r.steps.processPayment).toBe("failed");
  });

  it("ignores the deadline once the payment answered, and a second one", () => {
    expect(given(created, reserved, paid).when(timedOut).actions).toEqual([]);
    const twice = given(created, reserved, timedOut, cancelled("PENDING")).when(timedOut);
    expect(twice.actions).toEqual([]);
  });

  it("compensates a payment failure: release the stock, skip the refund, end CANCELLED once the stock is back", () => {
    const compensating = given(created, reserved, declined).when(cancelled("PENDING", "payment failed: the card was declined"));
    expect(compensating.state?.status).toBe("COMPENSATING");
    expect(compensating.steps).toMatchObject({
      cancelOrder: "succeeded",
      releaseInventory: "running",
      refundPayment: "skipped",
      notifyCancellation: "succeeded",
    });
    const done = given(created, reserved, declined, cancelled("PENDING")).when(released("reserved"));
    expect(done.state?.status).toBe("CANCELLED");
  });

  it("compensates a customer's cancellation after confirmation: stock returned and money refunded, then CANCELLED", () => {
    const r = given(created, reserved, paid).when(cancelled("CONFIRMED"));
    expect(r.steps).toMatchObject({ releaseInventory: "running", refundPayment: "running" });
    expect(given(created, reserved, paid, cancelled("CONFIRMED"), released("committed")).when(refunded).state?.status).toBe("CANCELLED");
  });

  it("waits for payments' answer when the customer cancels while the payment runs: voided means nothing to refund", () => {
    const r = given(created, reserved).when(cancelled("PENDING"));
    expect(r.actions).toEqual([{ type: "clearPaymentDeadline" }]);
    expect(r.steps).toMatchObject({ processPayment: "running", refundPayment: "pending" });
    const end = given(created, reserved, cancelled("PENDING"), released("reserved")).when(voided);
    expect(end.steps).toMatchObject({ processPayment: "skipped", refundPayment: "skipped" });
    expect(end.state?.status).toBe("CANCELLED");
  });

  it("refunds when the charge lands after the customer's cancellation", () => {
    const r = given(created, reserved, cancelled("PENDING")).when(paid);
    expect(r.actions).toEqual([]);
    expect(r.steps).toMatchObject({ processPayment: "succeeded", refundPayment: "running" });
  });

  it("undoes its confirmation when the order had been cancelled meanwhile", () => {
    const r = given(created, reserved, paid).when({ type: "confirmation_refused", time: t(2), data: { orderId: ORDER } });
    expect(r.state?.status).toBe("RUNNING");
    expect(r.steps).toMatchObject({ confirmOrder: "skipped", notifyCustomer: "skipped" });
  });

  it("does not start the payment for a reservation that lands after a cancellation", () => {
    const r = given(created, cancelled("PENDING", "oops", 1)).when(reserved);
    expect(r.actions).toEqual([]);
    expect(r.steps).toMatchObject({ reserveInventory: "succeeded", processPayment: "pending", releaseInventory: "running" });
  });

  it("leaves the state untouched for a repeated event", () => {
    const past = [created, reserved, paid];
    let state: SagaState | null = null;
    for (const e of past) state = react(state, e, TIMEOUT).state;
    for (const e of past) {
      const again = react(state, e, TIMEOUT);
      expect(again.actions).toEqual([]);
      expect(again.state).toBe(state);
    }
  });

  it("ignores events of an order it never saw placed", () => {
    expect(given().when(paid)).toMatchObject({ state: null, actions: [] });
  });

  it("says timeouts in words", () => {
    expect([timeoutWords(30_000), timeoutWords(1500), timeoutWords(250)]).toEqual(["30 s", "1.5 s", "250 ms"]);
  });
});

describe("an order confirmed outside the saga's payment step (placed before payments existed)", () => {
  it("completes the saga and clears the deadline, so the deadline cannot cancel a confirmed order", () => {
    const confirmed: SagaInput = { type: "order.confirmed", time: t(3), data: { orderId: ORDER } };
    const r = given(created, reserved).when(confirmed);
    expect(r.actions).toEqual([{ type: "clearPaymentDeadline" }]);
    expect(r.state?.status).toBe("COMPLETED");
    expect(r.steps).toMatchObject({ processPayment: "skipped", confirmOrder: "succeeded" });
    expect(given(created, reserved, confirmed).when(timedOut).actions).toEqual([]);
  });

  it("changes nothing when the confirmation is the saga's own", () => {
    let state: SagaState | null = null;
    for (const e of [created, reserved, paid]) state = react(state, e, TIMEOUT).state;
    const again = react(state, { type: "order.confirmed", time: t(3), data: { orderId: ORDER } }, TIMEOUT);
    expect(again).toEqual({ state, actions: [] });
  });
});
