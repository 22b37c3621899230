/**
 * Stock reservations, one per order. Every change runs in the caller's transaction (a
 * subscription's, with its checkpoint), and the per-order row in `inventory.reservations` makes
 * each step happen once: reserve inserts it (a second delivery finds it and stops), release and
 * commit move it from `reserved` onwards and do nothing from any other status.
 *
 * No deadlocks and no oversell: product rows are locked with `select ... for update` in one
 * fixed order (sorted ids) before any is changed, so two orders over the same products queue
 * on the first one they share instead of each holding what the other wants; the counts are
 * checked under those locks, and the table's checks refuse a negative or oversold count anyway.
 */
import { sql } from "drizzle-orm";
import type { Appender, EventEnvelope, Tx } from "../../src/platform.ts";
import { InventoryCommitted, InventoryLow, InventoryReleased, InventoryReservationFailed, InventoryReserved } from "./events.ts";

/** Cause is the event a change answers: its appends carry its correlation and take it as their causation. */
export type Cause = Pick<EventEnvelope, "id" | "correlationid" | "actorid"> | undefined;

/** StockLine is a quantity of one product. */
export interface StockLine {
  productId: string;
  quantity: number;
}

/** ReserveOutcome says what reserveStock did. */
export type ReserveOutcome = "reserved" | "product_not_found" | "insufficient_stock" | "already_handled";

interface LockedProduct {
  id: string;
  sku: string;
  name: string;
  stock: number;
  reserved: number;
  low_stock_threshold: number;
}

/** mergeLines sums the quantities per product and sorts by product id: the lock order. */
export function mergeLines(lines: readonly StockLine[]): StockLine[] {
  const byId = new Map<string, number>();
  for (const l of lines) byId.set(l.productId, (byId.get(l.productId) ?? 0) + l.quantity);
  return [...byId].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([productId, quantity]) => ({ productId, quantity }));
}

/** lockProducts locks product rows in id order (one statement), so that lockers queue rather than deadlock. */
export const lockProducts = async (tx: Tx, ids: string[]) =>
  (await tx.execute(sql`
    select id, sku, name, stock, reserved, low_stock_threshold from inventory.products
    where id = any(${sql.param(ids)}::uuid[]) order by id for update`)) as unknown as LockedProduct[];

const setReservation = (tx: Tx, orderId: string, status: string, lines: StockLine[]) =>
  tx.execute(
    sql`update inventory.reservations set status = ${status}, lines = ${JSON.stringify(lines)}::jsonb, updated_at = now() where order_id = ${orderId}`,
  );

/**
 * reserveStock reserves every line of an order or none, and appends `inventory.reserved` or
 * `inventory.reservation_failed` (and `inventory.low` for each product whose available stock
 * crossed down through its threshold).
 */
export async function reserveStock(tx: Tx, outbox: Appender, orderId: string, orderLines: readonly StockLine[], causedBy?: Cause): Promise<ReserveOutcome> {
  const meta = { subject: orderId, causedBy };
  const claimed = (await tx.execute(sql`
    insert into inventory.reservations (order_id, status, lines) values (${orderId}, 'failed', '[]'::jsonb)
    on conflict (order_id) do nothing returning order_id`)) as unknown as unknown[];
  if (claimed.length === 0) return "already_handled";

  const lines = mergeLines(orderLines);
  const locked = await lockProducts(
    tx,
    lines.map((l) => l.productId),
  );
  const byId = new Map(locked.map((p) => [p.id, p]));
  const missing = lines.filter((l) => !byId.has(l.productId)).map((l) => l.productId);
  if (missing.length > 0) {
    await outbox.append(tx, [InventoryReservationFailed.with({ orderId, reason: "product_not_found", productIds: missing }, meta)]);
    return "product_not_found";
  }
  const short = lines
    .map((l) => ({ productId: l.productId, requested: l.quantity, available: byId.get(l.productId)!.stock - byId.get(l.productId)!.reserved }))
    .filter((l) => l.requested > l.available);
  if (short.length > 0) {
    await outbox.append(tx, [InventoryReservationFailed.with({ orderId, reason: "insufficient_stock", lines: short }, meta)]);
    return "insufficient_stock";
  }

  await tx.execute(sql`
    update inventory.products p set reserved = p.reserved + u.quantity, updated_at = now()
    from unnest(${sql.param(lines.map((l) => l.productId))}::uuid[], ${sql.param(lines.map((l) => l.quantity))}::int[]) as u(id, quantity)
    where p.id = u.id`);
  await setReservation(tx, orderId, "reserved", lines);
  const low = lines.flatMap((l) => {
    const p = byId.get(l.productId)!;
    const before = p.stock - p.reserved;
    const after = before - l.quantity;
    return before > p.low_stock_threshold && after <= p.low_stock_threshold
      ? [InventoryLow.with({ productId: p.id, sku: p.sku, name: p.name, available: after, threshold: p.low_stock_threshold }, { subject: p.id, causedBy })]
      : [];
  });
  await outbox.append(tx, [InventoryReserved.with({ orderId, lines }, meta), ...low]);
  return "reserved";
}

const claimReservation = async (tx: Tx, orderId: string) => {
  const [row] = (await tx.execute(sql`select status, lines from inventory.reservations where order_id = ${orderId} for update`)) as unknown as {
    status: "reserved" | "failed" | "released" | "committed";
    lines: StockLine[];
  }[];
  return row;
};

/**
 * releaseStock gives an order's stock back when it is cancelled: a reservation is released, and
 * stock already committed (a confirmed order cancelled before shipping) is returned. Appends
 * `inventory.released` once; a cancelled order never reserved leaves a tombstone so that a late
 * `order.created` reserves nothing.
 */
export async function releaseStock(tx: Tx, outbox: Appender, orderId: string, causedBy?: Cause): Promise<"released" | "nothing_to_release"> {
  const meta = { subject: orderId, causedBy };
  const row = await claimReservation(tx, orderId);
  if (!row) {
    await tx.execute(
      sql`insert into inventory.reservations (order_id, status, lines) values (${orderId}, 'released', '[]'::jsonb) on conflict (order_id) do nothing`,
    );
    return "nothing_to_release";
  }
  if (row.status !== "reserved" && row.status !== "committed") return "nothing_to_release";
  const lines = mergeLines(row.lines);
  await lockProducts(
    tx,
    lines.map((l) => l.productId),
  );
  const ids = sql.param(lines.map((l) => l.productId));
  const qs = sql.param(lines.map((l) => l.quantity));
  await tx.execute(
    row.status === "reserved"
      ? sql`update inventory.products p set reserved = p.reserved - u.quantity, updated_at = now() from unnest(${ids}::uuid[], ${qs}::int[]) as u(id, quantity) where p.id = u.id`
      : sql`update inventory.products p set stock = p.stock + u.quantity, updated_at = now() from unnest(${ids}::uuid[], ${qs}::int[]) as u(id, quantity) where p.id = u.id`,
  );
  await setReservation(tx, orderId, "released", lines);
  await outbox.append(tx, [InventoryReleased.with({ orderId, lines, from: row.status }, meta)]);
  return "released";
}

/**
 * commitStock turns a confirmed order's reservation into a stock decrement (stock and reserved
 * both fall; available stays), once, appending `inventory.committed`.
 */
export async function commitStock(tx: Tx, outbox: Appender, orderId: string, causedBy?: Cause): Promise<"committed" | "nothing_to_commit"> {
  const meta = { subject: orderId, causedBy };
  const row = await claimReservation(tx, orderId);
  if (row?.status !== "reserved") return "nothing_to_commit";
  const lines = mergeLines(row.lines);
  await lockProducts(
    tx,
    lines.map((l) => l.productId),
  );
  await tx.execute(sql`
    update inventory.products p set stock = p.stock - u.quantity, reserved = p.reserved - u.quantity, updated_at = now()
    from unnest(${sql.param(lines.map((l) => l.productId))}::uuid[], ${sql.param(lines.map((l) => l.quantity))}::int[]) as u(id, quantity)
    where p.id = u.id`);
  await setReservation(tx, orderId, "committed", lines);
  await outbox.append(tx, [InventoryCommitted.with({ orderId, lines }, meta)]);
  return "committed";
}
