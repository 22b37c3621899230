import { randomUUIDv7 } from "bun";
import { type Appender, type AuthUser, type Db, rawSql } from "../../src/platform.ts";
import type { UsersApi } from "../users/index.ts";
import { NotPostAuthorError, PostNotFoundError, ReplyTargetNotFoundError } from "./errors.ts";
import { PostCreated, PostDeleted, PostLiked, PostUnliked } from "./events.ts";

/** PostsDeps are what the posts use cases need. */
export interface PostsDeps {
  db: Db;
  outbox: Appender;
  users: Pick<UsersApi, "findAccounts" | "getAccount">;
}

/** NewPost is a validated `POST /posts` body (tags already lower-cased and unique). */
export interface NewPost {
  content: string;
  mediaUrls: string[];
  tags: string[];
  inReplyToId?: string | undefined;
}

/**
 * createPost publishes a post, or a reply when `inReplyToId` is given, and appends `post.created`
 * in the same transaction. A reply bumps its parent's `replies_count` in the statement that
 * checks the parent is live, so the count equals the live replies however many arrive at once.
 */
export async function createPost(deps: PostsDeps, authorId: string, input: NewPost): Promise<string> {
  const id = randomUUIDv7();
  await deps.db.transaction(async (tx) => {
    const sql = rawSql(tx);
    const parent = input.inReplyToId ?? null;
    if (parent) {
      const bumped = await sql`update posts.posts set replies_count = replies_count + 1 where id = ${parent} and deleted_at is null returning id`;
      if (bumped.length === 0) throw new ReplyTargetNotFoundError();
    }
    const [row] = await sql<{ created_at: string }[]>`
      insert into posts.posts (id, author_id, content, media_urls, tags, in_reply_to_id)
      values (${id}, ${authorId}, ${input.content}, ${input.mediaUrls}::text[], ${input.tags}::text[], ${parent})
      returning to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at`;
    await deps.outbox.append(tx, [
      PostCreated.with(
        { postId: id, authorId, content: input.content, mediaUrls: input.mediaUrls, tags: input.tags, inReplyToId: parent, createdAt: row!.created_at },
        { subject: id },
      ),
    ]);
  });
  return id;
}

/**
 * deletePost deletes a post for its author or an admin (anyone else: 403) and appends
 * `post.deleted`. Deleting an already deleted post again is a no-op 204 for them, and a 404 for
 * anyone else, as it is for a post that never existed.
 */
export async function deletePost(deps: PostsDeps, caller: AuthUser, postId: string): Promise<void> {
  await deps.db.transaction(async (tx) => {
    const sql = rawSql(tx);
    // Locked: of two concurrent deletes one waits and then finds the post deleted (one event).
    const [row] = await sql<{ author_id: string; in_reply_to_id: string | null; deleted: boolean }[]>`
      select author_id, in_reply_to_id, deleted_at is not null as deleted from posts.posts where id = ${postId} for update`;
    const allowed = row && (row.author_id === caller.id || caller.role === "admin");
    if (!row || (row.deleted && !allowed)) throw new PostNotFoundError();
    if (!allowed) throw new NotPostAuthorError();
    if (row.deleted) return;
    await sql`update posts.posts set deleted_at = now() where id = ${postId}`;
    if (row.in_reply_to_id) await sql`update posts.posts set replies_count = replies_count - 1 where id = ${row.in_reply_to_id}`;
    await deps.outbox.append(tx, [
      PostDeleted.with({ postId, authorId: row.author_id, inReplyToId: row.in_reply_to_id, deletedBy: caller.id }, { subject: postId }),
    ]);
  });
}

/**
 * likePost records the caller's like (idempotent: a second like changes nothing) and appends
 * `post.liked` when the like is new. The like row and the counter change in one statement, so
 * `likes_count` equals the like rows under any number of concurrent likers.
 */
export async function likePost(deps: PostsDeps, userId: string, postId: string): Promise<void> {
  await deps.db.transaction(async (tx) => {
    const [row] = await rawSql(tx)<{ author_id: string | null; changed: boolean }[]>`
      with p as (select id, author_id from posts.posts where id = ${postId} and deleted_at is null),
      ins as (insert into posts.likes (post_id, user_id) select id, ${userId} from p on conflict do nothing returning post_id),
      upd as (update posts.posts set likes_count = likes_count + 1 where id in (select post_id from ins) returning id)
      select (select author_id from p) as author_id, exists(select 1 from upd) as changed`;
    if (!row!.author_id) throw new PostNotFoundError();
    if (row!.changed) await deps.outbox.append(tx, [PostLiked.with({ postId, authorId: row!.author_id, userId }, { subject: postId })]);
  });
}

/** unlikePost takes the caller's like back (idempotent) and appends `post.unliked` when there was one. */
export async function unlikePost(deps: PostsDeps, userId: string, postId: string): Promise<void> {
  await deps.db.transaction(async (tx) => {
    const [row] = await rawSql(tx)<{ author_id: string | null; changed: boolean }[]>`
      with p as (select id, author_id from posts.posts where id = ${postId} and deleted_at is null),
      del as (delete from posts.likes where post_id in (select id from p) and user_id = ${userId} returning post_id),
      upd as (update posts.posts set likes_count = likes_count - 1 where id in (select post_id from del) returning id)
      select (select author_id from p) as author_id, exists(select 1 from upd) as changed`;
    if (!row!.author_id) throw new PostNotFoundError();
    if (row!.changed) await deps.outbox.append(tx, [PostUnliked.with({ postId, authorId: row!.author_id, userId }, { subject: postId })]);
  });
}
