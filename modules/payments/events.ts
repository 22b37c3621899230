import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

const Cents = z.number().int().nonnegative();

/** PaymentFailureReasonSchema is why a charge was refused, as the card processor's test mode names it. */
export const PaymentFailureReasonSchema = z.enum(["card_declined", "insufficient_funds", "invalid_payment_method", "processing_error"]);

/** PaymentProcessed is published when an order's total was charged. */
export const PaymentProcessed = defineEvent({
  source: "payments",
  type: "payment.processed",
  visibility: "public",
  description: "An order's total was charged to its payment method (once per order).",
  schema: z.object({
    orderId: z.uuid(),
    customerId: z.uuid(),
    paymentId: z.uuid(),
    amountCents: Cents,
    currency: z.string().length(3),
    paymentMethod: z.string(),
    chargeId: z.string(),
  }),
});

/** PaymentFailed is published when the processor refused an order's charge; no money moved. */
export const PaymentFailed = defineEvent({
  source: "payments",
  type: "payment.failed",
  visibility: "public",
  description: "An order's charge was refused, with the reason (a code and words for the customer).",
  schema: z.object({
    orderId: z.uuid(),
    customerId: z.uuid(),
    paymentId: z.uuid(),
    amountCents: Cents,
    currency: z.string().length(3),
    reason: PaymentFailureReasonSchema,
    message: z.string(),
  }),
});

/** PaymentRefunded is published when a paid order was cancelled and its charge given back (once). */
export const PaymentRefunded = defineEvent({
  source: "payments",
  type: "payment.refunded",
  visibility: "public",
  description: "A cancelled order's charge was refunded in full.",
  schema: z.object({
    orderId: z.uuid(),
    customerId: z.uuid(),
    paymentId: z.uuid(),
    amountCents: Cents,
    currency: z.string().length(3),
    refundId: z.string(),
  }),
});

/** PaymentVoided is published when an order was cancelled before any money moved: its payment is called off. */
export const PaymentVoided = defineEvent({
  source: "payments",
  type: "payment.voided",
  visibility: "public",
  description: "A cancelled order's payment was called off before any money moved (not charged yet, or the processor never answered).",
  schema: z.object({ orderId: z.uuid(), customerId: z.uuid(), paymentId: z.uuid() }),
});

/** paymentEvents lists every event the payments module publishes. */
export const paymentEvents = [PaymentProcessed, PaymentFailed, PaymentRefunded, PaymentVoided];
