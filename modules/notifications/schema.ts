import { sql } from "drizzle-orm";
import { bigint, check, index, jsonb, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const notificationsSchema = pgSchema("notifications");

/**
 * notifications: one row per (cause event, recipient), whatever the number of deliveries of the
 * cause (the unique index and `on conflict do nothing`). `seq` numbers each recipient's
 * notifications in commit order (see `inboxes`): it is the SSE event id and the list's keyset.
 */
export const notifications = notificationsSchema.table(
  "notifications",
  {
    id: uuid("id").primaryKey(),
    recipientId: uuid("recipient_id").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    type: text("type").notNull(),
    title: text("title").notNull(),
    message: text("message").notNull(),
    data: jsonb("data").notNull(),
    causeEventId: uuid("cause_event_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    readAt: timestamp("read_at", { withTimezone: true, mode: "string" }),
  },
  (t) => [
    uniqueIndex("notifications_cause_recipient_key").on(t.causeEventId, t.recipientId),
    uniqueIndex("notifications_recipient_seq_key").on(t.recipientId, t.seq),
    // The unread list and count read only what is unread.
    index("notifications_unread_idx").on(t.recipientId, t.seq).where(sql`${t.readAt} is null`),
    check("notifications_type_snake_case", sql`${t.type} ~ '^[a-z][a-z0-9_]*$'`),
  ],
);

/**
 * inboxes: each recipient's last handed-out `seq`. Writers bump it with `update ... returning`,
 * which holds the row lock until commit, so two transactions writing to one recipient commit in
 * seq order: a reader that has seen seq n never misses a later-committing n-1 (positions handed
 * out at insert would allow that). Writers lock inboxes in recipient id order: no deadlocks.
 */
export const inboxes = notificationsSchema.table("inboxes", {
  recipientId: uuid("recipient_id").primaryKey(),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
});

/** devices: push targets registered by their owners; a token belongs to one user (the last to register it). */
export const devices = notificationsSchema.table(
  "devices",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    platform: text("platform", { enum: ["ios", "android", "web"] }).notNull(),
    token: text("token").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("devices_token_key").on(t.token),
    index("devices_user_idx").on(t.userId, t.createdAt),
    check("devices_platform", sql`${t.platform} in ('ios', 'android', 'web')`),
  ],
);
