import { sql } from "drizzle-orm";
import { check, index, integer, pgSchema, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const postsSchema = pgSchema("posts");

/**
 * posts: posts and replies. Ids are UUID v7, so id order is creation order and lists page by id
 * alone. Deleted posts keep their row (`deleted_at`), so a repeated DELETE and a reply's parent
 * link stay meaningful; every read leaves them out. Authors are users by id (no cross-schema key).
 */
export const posts = postsSchema.table(
  "posts",
  {
    id: uuid("id").primaryKey(),
    authorId: uuid("author_id").notNull(),
    content: text("content").notNull(),
    mediaUrls: text("media_urls").array().notNull().default(sql`'{}'`),
    tags: text("tags").array().notNull().default(sql`'{}'`),
    inReplyToId: uuid("in_reply_to_id"),
    likesCount: integer("likes_count").notNull().default(0),
    repliesCount: integer("replies_count").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    deletedAt: timestamp("deleted_at", { withTimezone: true, mode: "string" }),
  },
  (t) => [
    index("posts_author_idx").on(t.authorId, t.id.desc()).where(sql`${t.deletedAt} is null`),
    index("posts_replies_idx").on(t.inReplyToId, t.id).where(sql`${t.deletedAt} is null and ${t.inReplyToId} is not null`),
    check("posts_counts_non_negative", sql`${t.likesCount} >= 0 and ${t.repliesCount} >= 0`),
  ],
);

/** likes: one row per (post, user) who likes it. */
export const likes = postsSchema.table(
  "likes",
  {
    postId: uuid("post_id").notNull(),
    userId: uuid("user_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.postId, t.userId] })],
);
