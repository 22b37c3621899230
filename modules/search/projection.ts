import { defineSubscription, type EnvelopeOf, type rawSql } from "../../src/platform.ts";
import { PostCreated, PostDeleted } from "../posts/events.ts";
import { UserRegistered, UserUpdated } from "../users/events.ts";

type Sql = ReturnType<typeof rawSql>;

/**
 * document is the text search vector of a post: its tags (weight A: a tag match ranks above a
 * word in the text) and its content (weight B), both in the English configuration the queries
 * use, so "running" finds a post tagged `run` and one that says "runs".
 */
const document = (sql: Sql, content: string, tags: string[]) =>
  sql`setweight(to_tsvector('english', ${tags.join(" ")}), 'A') || setweight(to_tsvector('english', ${content}), 'B')`;

async function onPostCreated(sql: Sql, e: EnvelopeOf<typeof PostCreated>): Promise<void> {
  const { postId, authorId, content, tags } = e.data;
  // A post indexed already (a redelivery) or tombstoned (deleted before this copy arrived) stays as it is.
  await sql`
    insert into search.posts (post_id, author_id, document) values (${postId}, ${authorId}, ${document(sql, content, tags)})
    on conflict (post_id) do nothing`;
}

async function onPostDeleted(sql: Sql, e: EnvelopeOf<typeof PostDeleted>): Promise<void> {
  const { postId, authorId } = e.data;
  await sql`
    insert into search.posts (post_id, author_id, document, deleted) values (${postId}, ${authorId}, ''::tsvector, true)
    on conflict (post_id) do update set deleted = true, document = ''::tsvector`;
}

async function onUser(sql: Sql, e: EnvelopeOf<typeof UserRegistered | typeof UserUpdated>): Promise<void> {
  const { userId, username, displayName } = e.data;
  // The log position orders a user's events: a redelivered older one does not undo a newer one.
  const version = e.sequence ?? "0";
  await sql`
    insert into search.users (user_id, username, display_name, version) values (${userId}, ${username}, ${displayName}, ${version}::bigint)
    on conflict (user_id) do update set username = excluded.username, display_name = excluded.display_name, version = excluded.version
    where search.users.version <= excluded.version`;
}

/**
 * indexSubscription keeps the search index from the posts and users modules' public events:
 * posts are indexed on creation and dropped on deletion (tombstoned), people are indexed on
 * registration and re-indexed when their profile changes. Every step is idempotent, so each event
 * may be delivered twice. It starts from the beginning of the log, so a new deployment indexes
 * everything published before it.
 */
export const indexSubscription = defineSubscription({
  name: "search.index",
  on: [PostCreated, PostDeleted, UserRegistered, UserUpdated],
  partitions: 2,
  // The index is all it writes: declared so, its deliveries never hold back others' reads.
  appends: false,
  handleBatch: async (events, { sql }) => {
    for (const e of events) {
      switch (e.type) {
        case "post.created":
          await onPostCreated(sql, e);
          break;
        case "post.deleted":
          await onPostDeleted(sql, e);
          break;
        case "user.registered":
        case "user.updated":
          await onUser(sql, e);
          break;
      }
    }
  },
});
