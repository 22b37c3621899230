import { and, count, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { type Db, decodeCursor, type Page, page, prepared, rawSql } from "../../src/platform.ts";
import { NotificationNotFoundError } from "./errors.ts";
import { notifications } from "./schema.ts";
import { type NotificationRow, type NotificationView, toView } from "./views.ts";

const SeqCursor = z.tuple([z.string().regex(/^\d{1,15}$/)]);

/**
 * listNotifications pages through `userId`'s notifications, newest first (`unread` for the
 * unread only). Keyset on the recipient's seq, which new notifications only extend, so a walk
 * is stable while notifications arrive.
 */
export async function listNotifications(
  db: Db,
  userId: string,
  q: { cursor?: string | undefined; limit: number; unread?: boolean | undefined },
): Promise<Page<NotificationView>> {
  const after = decodeCursor(q.cursor, SeqCursor);
  const sql = rawSql(db);
  const rows = await sql<NotificationRow[]>`
    select id, seq::text as seq, type, title, message, data, created_at, read_at
    from notifications.notifications
    where recipient_id = ${userId}
      ${q.unread ? sql`and read_at is null` : sql``}
      ${after ? sql`and seq < ${after[0]}::int8` : sql``}
    order by seq desc
    limit ${q.limit + 1}`;
  const p = page(rows, q.limit, (r) => [r.seq]);
  return { items: p.items.map(toView), nextCursor: p.nextCursor };
}

const unread = prepared("notifications_unread_count", ["userId"], (db, $) =>
  db
    .select({ n: count() })
    .from(notifications)
    .where(and(eq(notifications.recipientId, $.userId), isNull(notifications.readAt))),
);

/** unreadCount counts `userId`'s unread notifications (the partial index holds only those). */
export async function unreadCount(db: Db, userId: string): Promise<number> {
  const [row] = await unread.execute(db, { userId });
  return Number(row?.n ?? 0);
}

/** markRead marks one of `userId`'s notifications read (again: no change) and returns it; another's is not found. */
export async function markRead(db: Db, userId: string, id: string): Promise<NotificationView> {
  const sql = rawSql(db);
  const [row] = await sql<NotificationRow[]>`
    update notifications.notifications set read_at = coalesce(read_at, now())
    where id = ${id} and recipient_id = ${userId}
    returning id, seq::text as seq, type, title, message, data, created_at, read_at`;
  if (!row) throw new NotificationNotFoundError();
  return toView(row);
}

/** markAllRead marks every unread notification of `userId` read and says how many it marked. */
export async function markAllRead(db: Db, userId: string): Promise<number> {
  const sql = rawSql(db);
  const rows = await sql`update notifications.notifications set read_at = now() where recipient_id = ${userId} and read_at is null returning 1`;
  return rows.length;
}
