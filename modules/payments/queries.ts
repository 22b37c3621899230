import { sql } from "drizzle-orm";
import type { Db } from "../../src/platform.ts";
import { PaymentNotFoundError } from "./errors.ts";
import type { PAYMENT_STATUSES } from "./schema.ts";

/** Payment is an order's payment as the API shows it. */
export interface Payment {
  orderId: string;
  paymentId: string;
  customerId: string;
  status: (typeof PAYMENT_STATUSES)[number];
  amountCents: number;
  currency: string;
  paymentMethod: string;
  chargeId: string | null;
  refundId: string | null;
  failureReason: string | null;
  failureMessage: string | null;
  createdAt: string;
  updatedAt: string;
  processedAt: string | null;
  refundedAt: string | null;
}

const iso = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

/** getPayment reads an order's payment. */
export async function getPayment(db: Db, orderId: string): Promise<Payment> {
  const [row] = (await db.execute(sql`
    select order_id as "orderId", id as "paymentId", customer_id as "customerId", status, amount_cents as "amountCents", currency,
      payment_method as "paymentMethod", charge_id as "chargeId", refund_id as "refundId", failure_reason as "failureReason",
      failure_message as "failureMessage", ${iso("created_at")} as "createdAt", ${iso("updated_at")} as "updatedAt",
      ${iso("processed_at")} as "processedAt", ${iso("refunded_at")} as "refundedAt"
    from payments.payments where order_id = ${orderId}`)) as unknown as Payment[];
  if (!row) throw new PaymentNotFoundError();
  return row;
}
