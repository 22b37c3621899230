/**
 * The orders read model: a `handleBatch` projection of the order streams into
 * `orders.order_views`, exactly once with its checkpoint. It folds each order's new events with
 * the aggregate's own `evolve` (so the view cannot drift from the stream) and writes the batch
 * in one `unnest` upsert.
 */
import { sql } from "drizzle-orm";
import { defineSubscription } from "../../src/platform.ts";
import { type OrderStreamEvent, orderStreamEvents } from "./events.ts";
import { type Order, type OrderState, order } from "./order.ts";

interface ViewRow {
  id: string;
  state: Order;
  version: number;
  last_sequence: string;
}

/** orderViewsProjection maintains `orders.order_views` (details and per-customer lists). */
export const orderViewsProjection = defineSubscription({
  name: "orders.views",
  on: orderStreamEvents,
  handleBatch: async (events, { tx }) => {
    const ids = [...new Set(events.map((e) => e.subject!))];
    const rows = (await tx.execute(
      sql`select id, state, version, last_sequence from orders.order_views where id = any(${sql.param(ids)}::uuid[]) for update`,
    )) as unknown as ViewRow[];
    const views = new Map<string, { state: OrderState; version: number; lastSequence: number }>(
      rows.map((r) => [r.id, { state: r.state, version: r.version, lastSequence: Number(r.last_sequence) }]),
    );
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
    // Times travel as text: postgres.js cannot serialise a timestamptz[] parameter of strings.
    const col = <T>(f: (v: (typeof out)[number] & { state: Order }) => T) => sql.param(out.map((v) => f(v as never)));
    await tx.execute(sql`
      insert into orders.order_views (id, customer_id, status, created_at, updated_at, version, last_sequence, state)
      select id, customer_id, status, created_at::timestamptz, updated_at::timestamptz, version, last_sequence, state::jsonb
      from unnest(${col((v) => v.id)}::uuid[], ${col((v) => v.state.customerId)}::uuid[], ${col((v) => v.state.status)}::text[],
                  ${col((v) => v.state.createdAt)}::text[], ${col((v) => v.state.updatedAt)}::text[],
                  ${col((v) => v.version)}::int[], ${col((v) => v.lastSequence)}::bigint[], ${col((v) => JSON.stringify(v.state))}::text[])
        as u(id, customer_id, status, created_at, updated_at, version, last_sequence, state)
      on conflict (id) do update set status = excluded.status, updated_at = excluded.updated_at, version = excluded.version,
        last_sequence = excluded.last_sequence, state = excluded.state
      where orders.order_views.last_sequence < excluded.last_sequence`);
  },
});
