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
 *
 * Set-based: `applyStock` takes a whole batch of steps (a subscription's batch, or one step for
 * the single-step helpers below) and costs the same few statements, in two round trips, whatever
 * its size: claim the new reservations, lock the existing ones and every product touched (each
 * in id order), all sent together; apply the steps in order in memory under those locks; then
 * write the products, the reservations and the events once each, with the COMMIT.
 */
import { sql } from "drizzle-orm";
import { type Appender, type EventEnvelope, prepared, type Tx, writeBehind } from "../../src/platform.ts";
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

type ReservationStatus = "reserved" | "failed" | "released" | "committed";

// The statements of a batch, prepared (one round trip each, parsed once per connection): their
// text never depends on the batch, which travels as arrays.
// Every product a batch may touch: the lines of its reservations to be made (`ids`) and those
// of the existing reservations it concerns (`orderIds`, read from their rows, which the batch
// has locked in the statement before: nobody else can change their lines). Known without a
// round trip of its own, so the locks go out with the claim. The rows are sorted before they
// are locked, so lockers queue on the first product they share rather than deadlock.
const lockProducts = prepared(
  "inventory_lock_batch_products",
  ["ids", "orderIds"],
  (_, $) => sql`
    select id, sku, name, stock, reserved, low_stock_threshold from inventory.products
    where id = any(${$.ids}::uuid[] || array(
      select (l->>'productId')::uuid from inventory.reservations r cross join jsonb_array_elements(r.lines) l
      where r.order_id = any(${$.orderIds}::uuid[])))
    order by id for update`,
).returns<LockedProduct>();
const claimReservations = prepared(
  "inventory_claim_reservations",
  ["ids"],
  (_, $) => sql`
    insert into inventory.reservations (order_id, status, lines)
    select order_id, 'failed', '[]'::jsonb from unnest(${$.ids}::uuid[]) as u(order_id) order by order_id
    on conflict (order_id) do nothing returning order_id`,
).returns<{ order_id: string }>();
const lockReservations = prepared(
  "inventory_lock_reservations",
  ["ids"],
  (_, $) => sql`
    select order_id, status, lines from inventory.reservations where order_id = any(${$.ids}::uuid[]) order by order_id for update`,
).returns<{ order_id: string; status: ReservationStatus; lines: StockLine[] }>();
const updateProducts = prepared(
  "inventory_update_products",
  ["ids", "stock", "reserved"],
  (_, $) => sql`
    update inventory.products p set stock = u.stock, reserved = u.reserved, updated_at = now()
    from unnest(${$.ids}::uuid[], ${$.stock}::int[], ${$.reserved}::int[]) as u(id, stock, reserved)
    where p.id = u.id`,
);
const updateReservations = prepared(
  "inventory_update_reservations",
  ["ids", "statuses", "lines"],
  (_, $) => sql`
    update inventory.reservations r set status = u.status, lines = u.lines::jsonb, updated_at = now()
    from unnest(${$.ids}::uuid[], ${$.statuses}::text[], ${$.lines}::text[]) as u(order_id, status, lines)
    where r.order_id = u.order_id`,
);
const insertTombstones = prepared(
  "inventory_insert_tombstones",
  ["ids"],
  (_, $) => sql`
    insert into inventory.reservations (order_id, status, lines)
    select order_id, 'released', '[]'::jsonb from unnest(${$.ids}::uuid[]) as u(order_id)
    on conflict (order_id) do nothing`,
);

/** StockStep is one thing to do to an order's stock, in the order they are to happen. */
export type StockStep =
  | { kind: "reserve"; orderId: string; lines: readonly StockLine[]; causedBy?: Cause }
  | { kind: "commit"; orderId: string; causedBy?: Cause }
  | { kind: "release"; orderId: string; causedBy?: Cause };

/** StepOutcome says what a step did. */
export type StepOutcome = ReserveOutcome | "committed" | "nothing_to_commit" | "released" | "nothing_to_release";

/** A reservation as the batch sees it: `absent` until a step makes one (a claimed row not yet decided counts as absent). */
type Reservation = { status: ReservationStatus | "absent"; lines: StockLine[]; existed: boolean; changed: boolean };

/**
 * applyStock carries out `steps` in order, in the caller's transaction, and returns each step's
 * outcome. A step repeated (in the batch or across deliveries) does nothing more: reserve
 * claims the order's row first (an order with a row is handled), commit and release move it
 * from `reserved` (or `committed`, for release) only.
 */
export async function applyStock(tx: Tx, outbox: Appender, steps: readonly StockStep[]): Promise<StepOutcome[]> {
  if (steps.length === 0) return [];
  // Claim: an order without a reservation row gets a placeholder, so that one delivery alone reserves it.
  const toClaim = [...new Set(steps.filter((x) => x.kind === "reserve").map((x) => x.orderId))].sort();
  // The existing reservations the other steps concern, locked in id order, then every product
  // the batch may touch (also those of an order already handled, whose step will do nothing).
  // Sent with the claim, in one round trip: a row the claim makes is this batch's whichever
  // statement runs first, and a claimed order's row as the lock reads it (the placeholder) is
  // ignored below.
  const others = [...new Set(steps.filter((x) => x.kind !== "reserve").map((x) => x.orderId))].sort();
  const lined = [...new Set(steps.flatMap((x) => (x.kind === "reserve" ? x.lines.map((l) => l.productId) : [])))];
  const [claimedRows, rows, lockedProducts] = await Promise.all([
    toClaim.length === 0 ? [] : claimReservations.execute(tx, { ids: toClaim }),
    others.length === 0 ? [] : lockReservations.execute(tx, { ids: others }),
    lined.length === 0 && others.length === 0 ? [] : lockProducts.execute(tx, { ids: lined, orderIds: others }),
  ]);
  const claimed = new Set(claimedRows.map((r) => r.order_id));
  const reservations = new Map<string, Reservation>();
  for (const id of claimed) reservations.set(id, { status: "absent", lines: [], existed: true, changed: false });
  for (const r of rows) if (!claimed.has(r.order_id)) reservations.set(r.order_id, { status: r.status, lines: r.lines, existed: true, changed: false });
  const reservationOf = (orderId: string) => {
    let r = reservations.get(orderId);
    if (!r) reservations.set(orderId, (r = { status: "absent", lines: [], existed: false, changed: false }));
    return r;
  };
  const products = new Map(lockedProducts.map((p) => [p.id, { ...p }]));
  const touched = new Set<string>();
  const events = [];
  const outcomes: StepOutcome[] = [];
  for (const x of steps) {
    const meta = { subject: x.orderId, causedBy: x.causedBy };
    const r = reservationOf(x.orderId);
    if (x.kind === "reserve") {
      // Claimed by this batch and not decided yet: this step decides it; anything else was handled.
      if (!(claimed.has(x.orderId) && r.status === "absent" && r.existed)) {
        outcomes.push("already_handled");
        continue;
      }
      const lines = mergeLines(x.lines);
      r.changed = true;
      const missing = lines.filter((l) => !products.has(l.productId)).map((l) => l.productId);
      if (missing.length > 0) {
        r.status = "failed";
        events.push(InventoryReservationFailed.with({ orderId: x.orderId, reason: "product_not_found", productIds: missing }, meta));
        outcomes.push("product_not_found");
        continue;
      }
      const short = lines
        .map((l) => ({ productId: l.productId, requested: l.quantity, available: products.get(l.productId)!.stock - products.get(l.productId)!.reserved }))
        .filter((l) => l.requested > l.available);
      if (short.length > 0) {
        r.status = "failed";
        events.push(InventoryReservationFailed.with({ orderId: x.orderId, reason: "insufficient_stock", lines: short }, meta));
        outcomes.push("insufficient_stock");
        continue;
      }
      const low = [];
      for (const l of lines) {
        const p = products.get(l.productId)!;
        const before = p.stock - p.reserved;
        const after = before - l.quantity;
        p.reserved += l.quantity;
        touched.add(p.id);
        if (before > p.low_stock_threshold && after <= p.low_stock_threshold) {
          low.push(
            InventoryLow.with(
              { productId: p.id, sku: p.sku, name: p.name, available: after, threshold: p.low_stock_threshold },
              { subject: p.id, causedBy: x.causedBy },
            ),
          );
        }
      }
      r.status = "reserved";
      r.lines = lines;
      events.push(InventoryReserved.with({ orderId: x.orderId, lines }, meta), ...low);
      outcomes.push("reserved");
    } else if (x.kind === "commit") {
      if (r.status !== "reserved") {
        outcomes.push("nothing_to_commit");
        continue;
      }
      const lines = mergeLines(r.lines);
      for (const l of lines) {
        const p = products.get(l.productId)!;
        p.stock -= l.quantity;
        p.reserved -= l.quantity;
        touched.add(p.id);
      }
      r.status = "committed";
      r.lines = lines;
      r.changed = true;
      events.push(InventoryCommitted.with({ orderId: x.orderId, lines }, meta));
      outcomes.push("committed");
    } else {
      if (r.status === "absent") {
        // Cancelled before it was reserved: a tombstone, so that a late `order.created` reserves nothing.
        r.status = "released";
        r.lines = [];
        r.changed = true;
        outcomes.push("nothing_to_release");
        continue;
      }
      if (r.status !== "reserved" && r.status !== "committed") {
        outcomes.push("nothing_to_release");
        continue;
      }
      const from = r.status;
      const lines = mergeLines(r.lines);
      for (const l of lines) {
        const p = products.get(l.productId)!;
        if (from === "reserved") p.reserved -= l.quantity;
        else p.stock += l.quantity;
        touched.add(p.id);
      }
      r.status = "released";
      r.lines = lines;
      r.changed = true;
      events.push(InventoryReleased.with({ orderId: x.orderId, lines, from }, meta));
      outcomes.push("released");
    }
  }
  // The writes are write-behind: nothing below needs their answers, so they travel with the
  // COMMIT instead of costing a round trip each while the product rows are locked.
  if (touched.size > 0) {
    const ps = [...touched].sort().map((id) => products.get(id)!);
    await writeBehind(tx, updateProducts.execute(tx, { ids: ps.map((p) => p.id), stock: ps.map((p) => p.stock), reserved: ps.map((p) => p.reserved) }));
  }
  const write = (existed: boolean) =>
    [...reservations].filter(([, r]) => r.changed && r.existed === existed && r.status !== "absent").sort(([a], [b]) => (a < b ? -1 : 1));
  const updates = write(true);
  if (updates.length > 0) {
    const ids = updates.map(([id]) => id);
    await writeBehind(
      tx,
      updateReservations.execute(tx, { ids, statuses: updates.map(([, r]) => r.status), lines: updates.map(([, r]) => JSON.stringify(r.lines)) }),
    );
  }
  const tombstones = write(false);
  if (tombstones.length > 0) {
    await writeBehind(tx, insertTombstones.execute(tx, { ids: tombstones.map(([id]) => id) }));
  }
  if (events.length > 0) await outbox.append(tx, events);
  return outcomes;
}

/**
 * reserveStock reserves every line of an order or none, and appends `inventory.reserved` or
 * `inventory.reservation_failed` (and `inventory.low` for each product whose available stock
 * crossed down through its threshold).
 */
export async function reserveStock(tx: Tx, outbox: Appender, orderId: string, orderLines: readonly StockLine[], causedBy?: Cause): Promise<ReserveOutcome> {
  const [outcome] = await applyStock(tx, outbox, [{ kind: "reserve", orderId, lines: orderLines, causedBy }]);
  return outcome as ReserveOutcome;
}

/**
 * releaseStock gives an order's stock back when it is cancelled: a reservation is released, and
 * stock already committed (a confirmed order cancelled before shipping) is returned. Appends
 * `inventory.released` once; a cancelled order never reserved leaves a tombstone so that a late
 * `order.created` reserves nothing.
 */
export async function releaseStock(tx: Tx, outbox: Appender, orderId: string, causedBy?: Cause): Promise<"released" | "nothing_to_release"> {
  const [outcome] = await applyStock(tx, outbox, [{ kind: "release", orderId, causedBy }]);
  return outcome as "released" | "nothing_to_release";
}

/**
 * commitStock turns a confirmed order's reservation into a stock decrement (stock and reserved
 * both fall; available stays), once, appending `inventory.committed`.
 */
export async function commitStock(tx: Tx, outbox: Appender, orderId: string, causedBy?: Cause): Promise<"committed" | "nothing_to_commit"> {
  const [outcome] = await applyStock(tx, outbox, [{ kind: "commit", orderId, causedBy }]);
  return outcome as "committed" | "nothing_to_commit";
}
