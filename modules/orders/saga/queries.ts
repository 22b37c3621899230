import { sql } from "drizzle-orm";
import type { Db } from "../../../src/platform.ts";
import type { SagaState } from "./process.ts";

/** SagaView is an order's saga as the API shows it. */
export type SagaView = Pick<SagaState, "orderId" | "status" | "steps" | "paymentDueAt" | "startedAt" | "updatedAt">;

/** getSaga reads an order's saga, or null when it has not started. */
export async function getSaga(db: Db, orderId: string): Promise<SagaView | null> {
  const [row] = (await db.execute(sql`select state from orders.sagas where order_id = ${orderId}`)) as unknown as { state: SagaState }[];
  if (!row) return null;
  const { orderId: id, status, steps, paymentDueAt, startedAt, updatedAt } = row.state;
  return { orderId: id, status, steps, paymentDueAt, startedAt, updatedAt };
}
