/**
 * The card processor behind payments: a `PaymentProvider` interface, and a simulated provider
 * that behaves like a processor's test mode, the outcome chosen by the payment method:
 *
 * | paymentMethod                 | outcome                               |
 * | ----------------------------- | ------------------------------------- |
 * | `pm_card_visa`, `pm_card_mastercard` | succeeds                       |
 * | `pm_card_declined`            | fails, `card_declined`                |
 * | `pm_card_insufficient_funds`  | fails, `insufficient_funds`           |
 * | `pm_card_timeout`             | never answers                         |
 * | anything else                 | fails, `invalid_payment_method`       |
 *
 * Like a real processor it honours idempotency keys: a request repeated with the same key gets
 * the first answer and moves no money again.
 */
import { randomUUIDv7 } from "bun";
import type { z } from "zod";
import type { PaymentFailureReasonSchema } from "./events.ts";

/** PaymentFailureReason is why a charge was refused. */
export type PaymentFailureReason = z.infer<typeof PaymentFailureReasonSchema>;

/** ChargeRequest asks the processor to take an amount from a payment method. */
export interface ChargeRequest {
  /** The same key always gets the same answer, and money moves at most once for it. */
  idempotencyKey: string;
  amountCents: number;
  currency: string;
  paymentMethod: string;
  /** What the processor keeps beside the charge (order and customer ids). */
  metadata?: Record<string, string>;
}

/** ChargeResult is the processor's answer to a charge. */
export type ChargeResult = { status: "succeeded"; chargeId: string } | { status: "failed"; reason: PaymentFailureReason; message: string };

/** RefundRequest asks the processor to give a charge back in full. */
export interface RefundRequest {
  idempotencyKey: string;
  chargeId: string;
  amountCents: number;
}

/** RefundResult is the processor's answer to a refund. */
export type RefundResult = { status: "succeeded"; refundId: string } | { status: "failed"; message: string };

/** PaymentProvider is a card processor. A call may never answer: callers bound it with `signal`. */
export interface PaymentProvider {
  readonly name: string;
  charge(request: ChargeRequest, signal?: AbortSignal): Promise<ChargeResult>;
  refund(request: RefundRequest, signal?: AbortSignal): Promise<RefundResult>;
}

/** SimulatedLedger is what the simulated processor did, for tests: money taken and given back per key. */
export interface SimulatedLedger {
  charges: { idempotencyKey: string; chargeId: string; amountCents: number }[];
  refunds: { idempotencyKey: string; refundId: string; chargeId: string; amountCents: number }[];
}

const FAILURES: Record<string, { reason: PaymentFailureReason; message: string }> = {
  pm_card_declined: { reason: "card_declined", message: "the card was declined" },
  pm_card_insufficient_funds: { reason: "insufficient_funds", message: "the card has insufficient funds" },
};
const SUCCEEDS = new Set(["pm_card_visa", "pm_card_mastercard"]);

/** neverUnless is a promise that never settles unless `signal` aborts (then it rejects with the reason). */
const neverUnless = (signal?: AbortSignal) =>
  new Promise<never>((_, reject) => {
    if (signal?.aborted) reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });

/**
 * createSimulatedProvider is the test-mode processor. Its ledger lives in this process's memory
 * (a real processor keeps it on its side, for every caller); `latencyMs` delays each answer.
 *
 * @example const provider = createSimulatedProvider(); await provider.charge({ idempotencyKey: orderId, amountCents: 1250, currency: "USD", paymentMethod: "pm_card_visa" });
 */
export function createSimulatedProvider(opts: { latencyMs?: number } = {}): PaymentProvider & { ledger: SimulatedLedger } {
  const charges = new Map<string, ChargeResult>();
  const refunds = new Map<string, RefundResult>();
  const chargedAmounts = new Map<string, number>();
  const ledger: SimulatedLedger = { charges: [], refunds: [] };
  const delay = async (signal?: AbortSignal) => {
    if (opts.latencyMs) await Promise.race([Bun.sleep(opts.latencyMs), neverUnless(signal)]);
  };
  return {
    name: "simulated",
    ledger,
    async charge(req, signal) {
      if (req.paymentMethod === "pm_card_timeout") return neverUnless(signal);
      await delay(signal);
      const seen = charges.get(req.idempotencyKey);
      if (seen) return seen;
      const failure = FAILURES[req.paymentMethod];
      let result: ChargeResult;
      if (failure) result = { status: "failed", ...failure };
      else if (!SUCCEEDS.has(req.paymentMethod)) result = { status: "failed", reason: "invalid_payment_method", message: "the payment method is not valid" };
      else {
        result = { status: "succeeded", chargeId: `ch_${randomUUIDv7().replaceAll("-", "")}` };
        chargedAmounts.set(result.chargeId, req.amountCents);
        ledger.charges.push({ idempotencyKey: req.idempotencyKey, chargeId: result.chargeId, amountCents: req.amountCents });
      }
      charges.set(req.idempotencyKey, result);
      return result;
    },
    async refund(req, signal) {
      await delay(signal);
      const seen = refunds.get(req.idempotencyKey);
      if (seen) return seen;
      const charged = chargedAmounts.get(req.chargeId);
      if (charged === undefined) return { status: "failed", message: `no such charge: ${req.chargeId}` };
      if (req.amountCents > charged) return { status: "failed", message: "a refund cannot exceed its charge" };
      const result: RefundResult = { status: "succeeded", refundId: `re_${randomUUIDv7().replaceAll("-", "")}` };
      refunds.set(req.idempotencyKey, result);
      ledger.refunds.push({ idempotencyKey: req.idempotencyKey, refundId: result.refundId, chargeId: req.chargeId, amountCents: req.amountCents });
      return result;
    },
  };
}

/** CALL_TIMEOUT is what `bounded` answers when the provider did not answer in time. */
export const CALL_TIMEOUT = Symbol("call timeout");

/** bounded runs a provider call with a deadline: its answer, or CALL_TIMEOUT once `ms` passed (the call is aborted). */
export async function bounded<T>(ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T | typeof CALL_TIMEOUT> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof CALL_TIMEOUT>((resolve) => {
    timer = setTimeout(() => {
      resolve(CALL_TIMEOUT);
      controller.abort(new Error(`payment provider did not answer within ${ms} ms`));
    }, ms);
  });
  try {
    // The aborted call rejects after the race is decided; that rejection is expected and dropped.
    const call$ = call(controller.signal);
    call$.catch(() => {});
    return await Promise.race([call$, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
