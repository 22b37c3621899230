/**
 * The orders read model: a `handleBatch` projection of the order streams into
 * `orders.order_views`, exactly once with its checkpoint. It folds each order's new events with
 * the aggregate's own `evolve` (so the view cannot drift from the stream) and writes the batch
 * in one `unnest` upsert. In the same transaction it keeps `orders.customer_histories`: each
 * changed order adds to its customer what it counts now (placed and not cancelled: one order and
 * its total) minus what it counted before the batch.
 */
import { sql } from "drizzle-orm";
import { defineSubscription, prepared, type Tx, writeBehind } from "../../src/platform.ts";
import { type OrderStreamEvent, orderStreamEvents } from "./events.ts";
import { type Order, type OrderState, order } from "./order.ts";

interface ViewRow {
  id: string;
  state: Order;
  version: number;
  last_sequence: string;
}

// Prepared (one round trip each, parsed once per connection): the batch travels as arrays.
// Read without a row lock: only this subscription (one partition) writes the views and the
// histories, and its batches commit one at a time through the fenced checkpoint advance
// (`outbox/worker/lease.ts`), each from what the last one left. A lock would give the
// transaction a transaction id from its first round trip on, holding back every reader's
// horizon while the batch is folded; unlocked, it takes one in the COMMIT's packet.
const readViews = prepared(
  "orders_views_read",
  ["ids"],
  (_, $) => sql`select id, state, version, last_sequence from orders.order_views where id = any(${$.ids}::uuid[])`,
).returns<ViewRow>();
// Times travel as text: postgres.js cannot serialise a timestamptz[] parameter of strings.
const upsertViews = prepared(
  "orders_views_upsert",
  ["ids", "customerIds", "statuses", "createdAts", "updatedAts", "versions", "sequences", "states"],
  (_, $) => sql`
    insert into orders.order_views (id, customer_id, status, created_at, updated_at, version, last_sequence, state)
    select id, customer_id, status, created_at::timestamptz, updated_at::timestamptz, version, last_sequence, state::jsonb
    from unnest(${$.ids}::uuid[], ${$.customerIds}::uuid[], ${$.statuses}::text[], ${$.createdAts}::text[], ${$.updatedAts}::text[],
                ${$.versions}::int[], ${$.sequences}::bigint[], ${$.states}::text[])
      as u(id, customer_id, status, created_at, updated_at, version, last_sequence, state)
    on conflict (id) do update set status = excluded.status, updated_at = excluded.updated_at, version = excluded.version,
      last_sequence = excluded.last_sequence, state = excluded.state
    where orders.order_views.last_sequence < excluded.last_sequence`,
);

/** counted is what an order adds to its customer's history: nothing unless placed and not cancelled. */
function counted(state: OrderState | undefined): { customerId: string; orders: number; cents: number } | null {
  if (!state || state.status === "NONE" || state.status === "CANCELLED") return null;
  return { customerId: state.customerId, orders: 1, cents: state.totalCents };
}

/** orderViewsProjection maintains `orders.order_views` (details and per-customer lists) and `orders.customer_histories`. */
export const orderViewsProjection = defineSubscription({
  name: "orders.views",
  on: orderStreamEvents,
  // A read model: it appends nothing, and declared so its deliveries never hold back the saga's reads.
  appends: false,
  // Lists may trail the stream by a little more: a steady stream then comes in fewer, larger
  // deliveries (one order's reads come from its stream, not from here).
  lingerMs: 50,
  handleBatch: async (events, { tx }) => {
    const ids = [...new Set(events.map((e) => e.subject!))];
    const rows = await readViews.execute(tx, { ids });
    const views = new Map<string, { state: OrderState; version: number; lastSequence: number }>(
      rows.map((r) => [r.id, { state: r.state, version: r.version, lastSequence: Number(r.last_sequence) }]),
    );
    const before = new Map<string, OrderState>(rows.map((r) => [r.id, r.state]));
    const changed = new Set<string>();
    for (const e of events) {
      const id = e.subject!;
      const view = views.get(id) ?? { state: order.initialState(), version: 0, lastSequence: 0 };
      const sequence = Number(e.sequence);
      // A replay hands back events already applied: the view is past them.
      if (sequence <= view.lastSequence) continue;
      views.set(id, { state: order.evolve(view.state, { type: e.type, data: e.data } as OrderStreamEvent), version: view.version + 1, lastSequence: sequence });
      changed.add(id);
    }
    if (changed.size === 0) return;
    const out = [...changed].map((id) => ({ id, ...views.get(id)! })).filter((v) => v.state.status !== "NONE");
    // Write-behind: the upsert travels with the checkpoint's advance and the COMMIT.
    const col = <T>(f: (v: (typeof out)[number] & { state: Order }) => T) => out.map((v) => f(v as never));
    const upsert = upsertViews.execute(tx, {
      ids: col((v) => v.id),
      customerIds: col((v) => v.state.customerId),
      statuses: col((v) => v.state.status),
      createdAts: col((v) => v.state.createdAt),
      updatedAts: col((v) => v.state.updatedAt),
      versions: col((v) => v.version),
      sequences: col((v) => v.lastSequence),
      states: col((v) => JSON.stringify(v.state)),
    });
    await writeBehind(tx, upsert);
    await applyHistories(
      tx,
      [...changed].map((id) => [counted(before.get(id)), counted(views.get(id)!.state)] as const),
    );
  },
});

/** applyHistories adds each changed order's difference (now minus before) to its customer's history. */
async function applyHistories(tx: Tx, changes: readonly (readonly [ReturnType<typeof counted>, ReturnType<typeof counted>])[]): Promise<void> {
  const delta = new Map<string, { orders: number; cents: number }>();
  const add = (c: ReturnType<typeof counted>, sign: 1 | -1) => {
    if (!c) return;
    const d = delta.get(c.customerId) ?? { orders: 0, cents: 0 };
    d.orders += sign * c.orders;
    d.cents += sign * c.cents;
    delta.set(c.customerId, d);
  };
  for (const [was, now] of changes) {
    add(was, -1);
    add(now, 1);
  }
  const out = [...delta].filter(([, d]) => d.orders !== 0 || d.cents !== 0);
  if (out.length === 0) return;
  // Write-behind like the views' upsert: it travels with the checkpoint's advance and the COMMIT.
  await writeBehind(tx, upsertHistories.execute(tx, { ids: out.map(([id]) => id), orders: out.map(([, d]) => d.orders), cents: out.map(([, d]) => d.cents) }));
}

const upsertHistories = prepared(
  "orders_customer_histories_add",
  ["ids", "orders", "cents"],
  (_, $) => sql`
    insert into orders.customer_histories as h (customer_id, order_count, lifetime_cents)
    select * from unnest(${$.ids}::uuid[], ${$.orders}::int[], ${$.cents}::bigint[])
    on conflict (customer_id) do update set order_count = h.order_count + excluded.order_count, lifetime_cents = h.lifetime_cents + excluded.lifetime_cents`,
);
