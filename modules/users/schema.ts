import { sql } from "drizzle-orm";
import { boolean, check, index, integer, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const usersSchema = pgSchema("users");

/**
 * accounts: one row per user. Username and email are unique case-insensitively; the username
 * keeps the case it was typed in. The counters are kept exact by the statements that change
 * the rows they count (follows here, `counted_posts` for posts).
 */
export const accounts = usersSchema.table(
  "accounts",
  {
    id: uuid("id").primaryKey(),
    username: text("username").notNull(),
    email: text("email").notNull(),
    displayName: text("display_name").notNull(),
    bio: text("bio").notNull().default(""),
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ["user", "admin"] })
      .notNull()
      .default("user"),
    followersCount: integer("followers_count").notNull().default(0),
    followingCount: integer("following_count").notNull().default(0),
    postsCount: integer("posts_count").notNull().default(0),
    emailNotifications: boolean("email_notifications").notNull().default(true),
    postNotifications: boolean("post_notifications").notNull().default(true),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    /** Bumped by a password change or a disable: every token signed at an older version is refused. */
    tokenVersion: integer("token_version").notNull().default(0),
    /** Set while an admin has disabled the account: it cannot sign in and its tokens are refused. */
    disabledAt: timestamp("disabled_at", { withTimezone: true, mode: "string" }),
  },
  (t) => [
    uniqueIndex("accounts_username_lower_key").on(sql`lower(${t.username})`),
    uniqueIndex("accounts_email_lower_key").on(sql`lower(${t.email})`),
    check("accounts_counts_non_negative", sql`${t.followersCount} >= 0 and ${t.followingCount} >= 0 and ${t.postsCount} >= 0`),
  ],
);

/** follows: who follows whom; one row per pair, never oneself. */
export const follows = usersSchema.table(
  "follows",
  {
    followerId: uuid("follower_id")
      .notNull()
      .references(() => accounts.id),
    followeeId: uuid("followee_id")
      .notNull()
      .references(() => accounts.id),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.followerId, t.followeeId] }),
    // The two lists, newest first, read by keyset on (created_at, other id).
    index("follows_following_idx").on(t.followerId, t.createdAt, t.followeeId),
    index("follows_followers_idx").on(t.followeeId, t.createdAt, t.followerId),
    check("follows_not_self", sql`${t.followerId} <> ${t.followeeId}`),
  ],
);

/**
 * counted_posts: the posts module's posts this module has counted into `posts_count`, learnt
 * from `post.created` and `post.deleted`. A row per post (a tombstone once deleted) makes the
 * counting idempotent and independent of delivery order: an event seen twice changes nothing.
 */
export const countedPosts = usersSchema.table("counted_posts", {
  postId: uuid("post_id").primaryKey(),
  authorId: uuid("author_id").notNull(),
  deleted: boolean("deleted").notNull().default(false),
});
