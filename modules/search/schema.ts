import { sql } from "drizzle-orm";
import { bigint, boolean, customType, index, pgSchema, text, uuid } from "drizzle-orm/pg-core";

export const searchSchema = pgSchema("search");

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

/**
 * posts: the search index of posts, a projection of `post.created` and `post.deleted` (never a
 * read of the posts module's tables). `document` weighs tags (A) above the content (B), both
 * stemmed as English. A deleted post stays as a tombstone
 * with its text dropped, so a redelivered creation cannot bring it back.
 */
export const posts = searchSchema.table(
  "posts",
  {
    postId: uuid("post_id").primaryKey(),
    authorId: uuid("author_id").notNull(),
    document: tsvector("document").notNull(),
    deleted: boolean("deleted").notNull().default(false),
  },
  (t) => [index("posts_document_idx").using("gin", t.document).where(sql`not ${t.deleted}`)],
);

/**
 * users: the search index of people, a projection of `user.registered` and `user.updated`.
 * `version` is the event's log position, so an older event never overwrites a newer profile.
 * Prefix searches use the `text_pattern_ops` indexes on the lower-cased names (hand-written in
 * the migration).
 */
export const users = searchSchema.table("users", {
  userId: uuid("user_id").primaryKey(),
  username: text("username").notNull(),
  displayName: text("display_name").notNull(),
  version: bigint("version", { mode: "bigint" }).notNull().default(sql`0`),
});
