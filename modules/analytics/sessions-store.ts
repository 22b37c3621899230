/**
 * The sessions aggregate's reads and writes for the sessions consumer (see consumer.ts): the
 * sessions a delivery could touch, read under lock, and the delivery's changes written back.
 */
import type postgres from "postgres";
import type { SessionState } from "./sessions.ts";
import { SESSION_GAP_MS } from "./windows.ts";

type Sql = postgres.Sql;

const iso = (ms: number) => new Date(ms).toISOString();

/** Keyed holds a delivery's sessions by user, then by sessionId (no key text made per event). */
export type Keyed = Map<string, Map<string, SessionState[]>>;

/**
 * loadSessions reads the sessions the batch's events could touch: those of the batch's (user,
 * sessionId) keys that end less than the gap before the batch's earliest event. Every key of
 * the rows has its list in the answer, empty when none was found.
 */
export async function loadSessions(sql: Sql, rows: readonly { user_id: string; session_id: string; event_ms: string }[]): Promise<Keyed> {
  const keyed: Keyed = new Map();
  if (rows.length === 0) return keyed;
  // One loop for both (a delivery holds thousands of rows), not Math.min(...rows): a delivery may
  // hold far more rows than a call takes arguments. The keys travel as two arrays, and are told
  // apart by nested maps rather than a text joining user and sessionId made for every row.
  const users: string[] = [];
  const sessionIds: string[] = [];
  let earliest = Number.POSITIVE_INFINITY;
  for (const r of rows) {
    earliest = Math.min(earliest, Number(r.event_ms));
    let byId = keyed.get(r.user_id);
    if (!byId) keyed.set(r.user_id, (byId = new Map()));
    if (byId.has(r.session_id)) continue;
    byId.set(r.session_id, []);
    users.push(r.user_id);
    sessionIds.push(r.session_id);
  }
  const found = await sql<
    {
      id: string;
      user_id: string;
      session_id: string;
      start_ms: string;
      end_ms: string;
      event_count: number;
      page_views: number;
      cart_additions: number;
      purchases: number;
      revenue_cents: string;
    }[]
  >`
    select s.id, s.user_id, s.session_id, (date_part('epoch', s.start_time) * 1000)::bigint as start_ms, (date_part('epoch', s.end_time) * 1000)::bigint as end_ms,
           s.event_count, s.page_views, s.cart_additions, s.purchases, s.revenue_cents
    from analytics.sessions s join unnest(${users}::text[], ${sessionIds}::text[]) as k(u, sid)
      on s.user_id = k.u and s.session_id = k.sid
    where s.end_time > ${iso(earliest - SESSION_GAP_MS)}::timestamptz`;
  for (const f of found) {
    // Always there: a session found has one of the keys asked for.
    const list = keyed.get(f.user_id)!.get(f.session_id)!;
    list.push({
      id: f.id,
      start: Number(f.start_ms),
      end: Number(f.end_ms),
      eventCount: f.event_count,
      pageViews: f.page_views,
      cartAdditions: f.cart_additions,
      purchases: f.purchases,
      revenueCents: Number(f.revenue_cents),
    });
  }
  return keyed;
}

/**
 * applySessions deletes the sessions merged away, inserts the ones the delivery made (`created`)
 * and updates the others it touched. An update rather than one upsert for all: the sessions read
 * (loadSessions) already tell which exist, and an upsert's update first locks each row (a WAL
 * record of its own) after probing the key for the insert it does not make.
 */
export async function applySessions(
  sql: Sql,
  touched: { userId: string; sessionId: string; session: SessionState }[],
  mergedAway: string[],
  created: ReadonlySet<string>,
): Promise<void> {
  if (mergedAway.length) await sql`delete from analytics.sessions where id = any(${mergedAway}::uuid[])`;
  // One JSON parameter each (times as epoch milliseconds, added to the epoch exactly) rather than
  // ten arrays that postgres.js escapes element by element: a delivery touches thousands of
  // sessions. Read as `json`: each `->>` scans its element's short text again, but making the whole
  // document `jsonb` first (a tree of every field of every session, each element then copied out)
  // cost Postgres more (measured for 5,000 sessions: 55-60 ms against 62-92 for the update).
  const row = ({ userId, sessionId, session: x }: (typeof touched)[number]) => [
    x.id,
    userId,
    sessionId,
    x.start,
    x.end,
    x.eventCount,
    x.pageViews,
    x.cartAdditions,
    x.purchases,
    x.revenueCents,
  ];
  const fresh = touched.filter((t) => created.has(t.session.id));
  const changed = touched.filter((t) => !created.has(t.session.id));
  if (fresh.length)
    await sql`
      insert into analytics.sessions (id, user_id, session_id, start_time, end_time, event_count, page_views, cart_additions, purchases, revenue_cents)
      select (r->>0)::uuid, r->>1, r->>2, 'epoch'::timestamptz + (r->>3)::bigint * interval '1 millisecond', 'epoch'::timestamptz + (r->>4)::bigint * interval '1 millisecond',
             (r->>5)::int, (r->>6)::int, (r->>7)::int, (r->>8)::int, (r->>9)::bigint
      from json_array_elements(${JSON.stringify(fresh.map(row))}::text::json) as r`;
  if (changed.length)
    await sql`
      update analytics.sessions s set start_time = 'epoch'::timestamptz + (r->>3)::bigint * interval '1 millisecond',
        end_time = 'epoch'::timestamptz + (r->>4)::bigint * interval '1 millisecond', event_count = (r->>5)::int, page_views = (r->>6)::int,
        cart_additions = (r->>7)::int, purchases = (r->>8)::int, revenue_cents = (r->>9)::bigint
      from json_array_elements(${JSON.stringify(changed.map(row))}::text::json) as r
      where s.id = (r->>0)::uuid`;
}
