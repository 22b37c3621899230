import { boolean, index, integer, pgSchema, primaryKey, timestamp, uuid } from "drizzle-orm/pg-core";

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
    /** False for a celebrity's post: it was never fanned out, and reads merge it in. */
    fannedOut: boolean("fanned_out").notNull().default(true),
  },
  (t) => [index("posts_author_idx").on(t.authorId, t.postId)],
);

/**
 * readers: when each user last read their timeline from Postgres or followed someone (for
 * skipping inactive followers, and for finding who may hold a cached page: the index on the time
 * serves that, so a celebrity's post looks at the recently active readers, not at every follower).
 */
export const readers = timelinesSchema.table(
  "readers",
  {
    userId: uuid("user_id").primaryKey(),
    lastActiveAt: timestamp("last_active_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [index("readers_last_active_idx").on(t.lastActiveAt)],
);

/**
 * authors: each followed user's follower count, kept with the follows projection. Posts of
 * authors above the celebrity threshold are not fanned out; reads merge them in, whatever the
 * author's count is later (an author who drops below the threshold keeps those posts visible).
 */
export const authors = timelinesSchema.table("authors", {
  authorId: uuid("author_id").primaryKey(),
  followersCount: integer("followers_count").notNull().default(0),
  /** Set once any of the author's posts was not fanned out: reads look for such posts only among these authors. */
  mergedOnRead: boolean("merged_on_read").notNull().default(false),
});
