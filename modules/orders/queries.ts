import { sql } from "drizzle-orm";
import type { Db } from "../../src/platform.ts";
import type { OrderWithVersion } from "./commands.ts";
import type { Order, OrderStatus } from "./order.ts";

interface ViewRow {
  id: string;
  state: Order;
  version: number;
  created_at: string;
}

const toView = (r: ViewRow): OrderWithVersion => ({ ...r.state, version: r.version });

/**
 * listCustomerOrders reads a customer's orders from the read model, newest first (ids are UUID
 * v7), `limit` after the id `before`, optionally in one status.
 */
export async function listCustomerOrders(
  db: Db,
  q: { customerId: string; status?: OrderStatus | undefined; before?: string | undefined; limit: number },
): Promise<OrderWithVersion[]> {
  const rows = (await db.execute(sql`
    select id, state, version from orders.order_views
    where customer_id = ${q.customerId}
      ${q.status ? sql`and status = ${q.status}` : sql``}
      ${q.before ? sql`and id < ${q.before}` : sql``}
    order by id desc limit ${q.limit}`)) as unknown as ViewRow[];
  return rows.map(toView);
}

/**
 * listOrdersCreatedBetween reads orders created in `[from, to)` from the read model by its
 * `(created_at, id)` index, oldest first, after the key `after`.
 */
export async function listOrdersCreatedBetween(
  db: Db,
  q: { from: string; to: string; after?: [string, string] | undefined; limit: number },
): Promise<(OrderWithVersion & { _key: [string, string] })[]> {
  const rows = (await db.execute(sql`
    select id, state, version, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at from orders.order_views
    where created_at >= ${q.from}::timestamptz and created_at < ${q.to}::timestamptz
      ${q.after ? sql`and (created_at, id) > (${q.after[0]}::timestamptz, ${q.after[1]}::uuid)` : sql``}
    order by created_at, id limit ${q.limit}`)) as unknown as ViewRow[];
  return rows.map((r) => ({ ...toView(r), _key: [r.created_at, r.id] as [string, string] }));
}

/** CustomerHistory is what a customer's orders come to: those placed and not cancelled, and the sum of their totals. */
export interface CustomerHistory {
  customerId: string;
  /** Orders placed and not cancelled (pending, confirmed, shipped or delivered). */
  orderCount: number;
  /** The sum of those orders' totals, in cents: the lifetime value. */
  lifetimeCents: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * customerHistories reads the histories of `customerIds` from `orders.customer_histories` by its
 * primary key, one statement for all of them. A customer with no order counted (or an id that
 * cannot be a customer's) gets zeros.
 */
export async function customerHistories(db: Db, customerIds: readonly string[]): Promise<CustomerHistory[]> {
  const ids = [...new Set(customerIds)].filter((id) => UUID.test(id));
  const rows =
    ids.length === 0
      ? []
      : ((await db.execute(sql`
          select customer_id, order_count, lifetime_cents from orders.customer_histories where customer_id = any(${sql.param(ids)}::uuid[])`)) as unknown as {
          customer_id: string;
          order_count: number;
          lifetime_cents: string;
        }[]);
  const found = new Map(rows.map((r) => [r.customer_id, r]));
  return [...new Set(customerIds)].map((customerId) => {
    const r = found.get(customerId.toLowerCase());
    return { customerId, orderCount: r?.order_count ?? 0, lifetimeCents: r ? Number(r.lifetime_cents) : 0 };
  });
}
