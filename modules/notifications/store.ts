/**
 * Storing drafted notifications, in the delivery's transaction: one `unnest` insert per chunk
 * of recipients, then the email and push requests for exactly the rows that were new, then
 * (after commit) a NOTIFY so that every process's open streams learn of them.
 */
import { randomUUIDv7 } from "bun";
import { type Appender, afterCommit, type rawSql, type Tx } from "../../src/platform.ts";
import type { UsersApi } from "../users/index.ts";
import { NotificationEmailRequested, NotificationPushRequested } from "./events.ts";
import type { Draft } from "./sources.ts";
import type { Notifier } from "./stream/index.ts";

type Sql = ReturnType<typeof rawSql>;

/** CHUNK is the most drafts one insert statement carries. */
const CHUNK = 5_000;

/** StoreDeps are what storing needs: the appender, the users read API, and the NOTIFY side of the streams. */
export interface StoreDeps {
  outbox: Appender;
  users: Pick<UsersApi, "findNotificationTargets">;
  notifier: Notifier;
}

interface Stored {
  id: string;
  recipient_id: string;
  seq: string;
  type: string;
  title: string;
  message: string;
  data: Record<string, unknown>;
  draft: Draft;
}

/**
 * prepare drops drafts nobody should get (one's own actions) and all but the first draft per
 * (cause, recipient), then sorts them by recipient, keeping each recipient's drafts in event
 * order. Every transaction thus locks inboxes in ascending recipient order, across all its
 * statements, so two deliveries never deadlock.
 */
export function prepare(drafts: Draft[], rankOf: (cause: Draft["cause"]) => number = () => 0): Draft[] {
  const seen = new Set<string>();
  const kept = drafts.filter((d) => {
    if (d.actorId !== undefined && d.actorId === d.recipientId) return false;
    const key = `${d.cause.id}/${d.recipientId}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // A recipient's notifications get their seqs in the order of their causes in the batch.
  return kept.sort((a, b) => (a.recipientId < b.recipientId ? -1 : a.recipientId > b.recipientId ? 1 : rankOf(a.cause) - rankOf(b.cause)));
}

/**
 * insert stores the drafts and returns those that were new. A draft whose (cause, recipient)
 * is stored already (the event is being delivered again) takes no seq and is not returned, so
 * what follows from a notification (email, push, the stream) happens once.
 */
async function insert(sql: Sql, drafts: Draft[]): Promise<Stored[]> {
  const stored: Stored[] = [];
  for (let i = 0; i < drafts.length; i += CHUNK) {
    const chunk = drafts.slice(i, i + CHUNK);
    const rows = await sql<(Omit<Stored, "draft"> & { cause_event_id: string })[]>`
      with d as (
        select * from unnest(
          ${chunk.map(() => randomUUIDv7())}::uuid[], ${chunk.map((d) => d.recipientId)}::uuid[], ${chunk.map((d) => d.type)}::text[],
          ${chunk.map((d) => d.title)}::text[], ${chunk.map((d) => d.message)}::text[], ${chunk.map((d) => JSON.stringify(d.data))}::text[],
          ${chunk.map((d) => d.cause.id)}::uuid[]
        ) with ordinality as d(id, recipient_id, type, title, message, data, cause_event_id, ord)
      ),
      fresh as (
        select d.* from d
        where not exists (select 1 from notifications.notifications n where n.cause_event_id = d.cause_event_id and n.recipient_id = d.recipient_id)
      ),
      counts as (select recipient_id, count(*)::bigint as n from fresh group by recipient_id),
      inbox as (
        insert into notifications.inboxes as i (recipient_id, last_seq)
        select recipient_id, n from counts order by recipient_id
        on conflict (recipient_id) do update set last_seq = i.last_seq + excluded.last_seq
        returning recipient_id, last_seq
      )
      insert into notifications.notifications (id, recipient_id, seq, type, title, message, data, cause_event_id)
      select f.id, f.recipient_id, inbox.last_seq - counts.n + row_number() over (partition by f.recipient_id order by f.ord),
             f.type, f.title, f.message, f.data::jsonb, f.cause_event_id
      from fresh f join inbox using (recipient_id) join counts using (recipient_id)
      order by f.recipient_id, f.ord
      on conflict (cause_event_id, recipient_id) do nothing
      returning id, recipient_id, seq::text, type, title, message, data, cause_event_id`;
    const byKey = new Map(chunk.map((d) => [`${d.cause.id}/${d.recipientId}`, d]));
    for (const r of rows) {
      stored.push({ ...r, draft: byKey.get(`${r.cause_event_id}/${r.recipient_id}`)! });
    }
  }
  return stored;
}

/**
 * deliver stores `drafts` in the delivery's transaction and, for each new notification,
 * appends `notification.email_requested` (when the recipient's emailNotifications is on) and
 * one `notification.push_requested` per registered device, each caused by the notification's
 * cause event; after commit it tells the streams. Returns how many notifications were new.
 */
export async function deliver(deps: StoreDeps, tx: Tx, sql: Sql, drafts: Draft[], rankOf?: (cause: Draft["cause"]) => number): Promise<number> {
  const ready = prepare(drafts, rankOf);
  if (ready.length === 0) return 0;
  // Read before the insert takes the inbox locks, so no lock is held while waiting for another
  // pool connection; read when the notification is made, so a switch turned off since is respected.
  // The devices too, of every recipient drafted (those the insert finds already notified are
  // few: a redelivery): after the insert, a read would cost a round trip during which the
  // transaction, holding a transaction id since the insert, holds back every reader's horizon.
  const drafted = [...new Set(ready.map((d) => d.recipientId))];
  const [targets, devices] = await Promise.all([
    deps.users.findNotificationTargets(drafted),
    sql<{ id: string; user_id: string; platform: "ios" | "android" | "web"; token: string }[]>`
      select id, user_id, platform, token from notifications.devices where user_id = any(${drafted}::uuid[]) order by user_id, created_at`,
  ]);
  const emails = new Map(targets.filter((t) => t.emailNotifications).map((t) => [t.id, t.email]));
  const stored = await insert(sql, ready);
  if (stored.length === 0) return 0;
  const recipients = [...new Set(stored.map((s) => s.recipient_id))];

  const devicesOf = new Map<string, (typeof devices)[number][]>();
  for (const d of devices) {
    const list = devicesOf.get(d.user_id);
    if (list) list.push(d);
    else devicesOf.set(d.user_id, [d]);
  }

  const events = [];
  for (const s of stored) {
    const meta = { subject: s.recipient_id, causedBy: s.draft.cause };
    const email = emails.get(s.recipient_id);
    if (email) {
      events.push(
        NotificationEmailRequested.with(
          { recipient: email, subject: s.title, text: s.message, userId: s.recipient_id, notificationId: s.id, notificationType: s.type },
          meta,
        ),
      );
    }
    for (const d of devicesOf.get(s.recipient_id) ?? []) {
      events.push(
        NotificationPushRequested.with(
          {
            userId: s.recipient_id,
            deviceId: d.id,
            platform: d.platform,
            token: d.token,
            notificationId: s.id,
            notificationType: s.type,
            title: s.title,
            message: s.message,
            data: s.data,
          },
          meta,
        ),
      );
    }
  }
  if (events.length) await deps.outbox.append(tx, events);
  afterCommit(() => deps.notifier.publish(recipients));
  return stored.length;
}
