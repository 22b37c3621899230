import { sql } from "drizzle-orm";
import { check, integer, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const paymentsSchema = pgSchema("payments");

/** PAYMENT_STATUSES: pending (order placed, not charged yet), processed, failed, unanswered (the processor did not answer in time), refunded, voided (cancelled before any money moved). */
export const PAYMENT_STATUSES = ["pending", "processed", "failed", "unanswered", "refunded", "voided"] as const;

/**
 * payments: one row per order, keyed by the order id, which is also the idempotency key sent to
 * the processor. The primary key makes "one charge per order" a constraint, and every status
 * change is made under the row's lock from one status to the next, so a charge or a refund
 * happens once however often its event is delivered.
 */
export const payments = paymentsSchema.table(
  "payments",
  {
    orderId: uuid("order_id").primaryKey(),
    id: uuid("id").notNull().unique("payments_id_key"),
    customerId: uuid("customer_id").notNull(),
    amountCents: integer("amount_cents").notNull(),
    currency: text("currency").notNull(),
    paymentMethod: text("payment_method").notNull(),
    status: text("status", { enum: PAYMENT_STATUSES }).notNull(),
    chargeId: text("charge_id").unique("payments_charge_id_key"),
    refundId: text("refund_id").unique("payments_refund_id_key"),
    failureReason: text("failure_reason"),
    failureMessage: text("failure_message"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    processedAt: timestamp("processed_at", { withTimezone: true, mode: "string" }),
    refundedAt: timestamp("refunded_at", { withTimezone: true, mode: "string" }),
  },
  (t) => [
    check("payments_amount_nonnegative", sql`${t.amountCents} >= 0`),
    check("payments_status_known", sql`${t.status} in ('pending', 'processed', 'failed', 'unanswered', 'refunded', 'voided')`),
    // Money moved exactly when a charge id is recorded; a refund needs the charge it gives back.
    check("payments_charged_has_charge_id", sql`(${t.status} in ('processed', 'refunded')) = (${t.chargeId} is not null)`),
    check("payments_refunded_has_refund_id", sql`(${t.status} = 'refunded') = (${t.refundId} is not null)`),
  ],
);
