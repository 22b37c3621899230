import { boolean, index, pgSchema, primaryKey, timestamp, uuid } from "drizzle-orm/pg-core";

export const timelinesSchema = pgSchema("timelines");

/**
 * entries: each user's home timeline, newest first by post id (UUID v7, so creation order),
 * capped at TIMELINE_CAP rows per user on write.
 */
export const entries = timelinesSchema.table(
  "entries",
  {
    userId: uuid("user_id").notNull(),
    postId: uuid("post_id").notNull(),
    authorId: uuid("author_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.postId] }), index("entries_post_idx").on(t.postId)],
);

/** follows: who follows whom, projected from `user.followed` / `user.unfollowed`. */
export const follows = timelinesSchema.table(
  "follows",
  {
    followerId: uuid("follower_id").notNull(),
    followeeId: uuid("followee_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.followerId, t.followeeId] }), index("follows_followee_idx").on(t.followeeId, t.followerId)],
);

/**
 * posts: every post's id and author, projected from `post.created` / `post.deleted` (a tombstone
 * once deleted, so a redelivered creation cannot bring it back). Merges on follow and rebuilds
 * read it; the content stays with the posts module.
 */
export const posts = timelinesSchema.table(
  "posts",
  {
    postId: uuid("post_id").primaryKey(),
    authorId: uuid("author_id").notNull(),
    deleted: boolean("deleted").notNull().default(false),
  },
  (t) => [index("posts_author_idx").on(t.authorId, t.postId)],
);

/** readers: when each user last read their timeline or followed someone (for skipping inactive followers). */
export const readers = timelinesSchema.table("readers", {
  userId: uuid("user_id").primaryKey(),
  lastActiveAt: timestamp("last_active_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
});
