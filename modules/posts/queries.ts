import { z } from "zod";
import { decodeCursor, type Page, page, rawSql } from "../../src/platform.ts";
import type { PostsDeps } from "./commands.ts";
import { PostNotFoundError } from "./errors.ts";
import { type Post, type PostAuthor, type PostRow, toPost } from "./views.ts";

// Posts page by id alone: UUID v7 ids grow with creation time, and are unique.
const PostCursor = z.tuple([z.uuid()]);

type Sql = ReturnType<typeof rawSql>;
type PageQuery = { cursor?: string | undefined; limit: number };

const columns = (sql: Sql, viewerId: string) => sql`
  p.id, p.author_id, p.content, p.media_urls, p.tags, p.in_reply_to_id, p.likes_count, p.replies_count, to_char(p.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
  exists(select 1 from posts.likes l where l.post_id = p.id and l.user_id = ${viewerId}) as liked_by_me`;

/** withAuthors attaches each post's author through the users module's read API: one call per page. */
async function withAuthors(deps: PostsDeps, rows: PostRow[]): Promise<Post[]> {
  const ids = [...new Set(rows.map((r) => r.author_id))];
  const authors = new Map<string, PostAuthor>();
  for (const a of await deps.users.findAccounts(ids)) authors.set(a.id, { id: a.id, username: a.username, displayName: a.displayName });
  return rows.map((r) => toPost(r, authors.get(r.author_id) ?? null));
}

/** getPost returns one live post as `viewerId` sees it (with their like). */
export async function getPost(deps: PostsDeps, viewerId: string, id: string): Promise<Post> {
  const sql = rawSql(deps.db);
  const [row] = await sql<PostRow[]>`select ${columns(sql, viewerId)} from posts.posts p where p.id = ${id} and p.deleted_at is null`;
  if (!row) throw new PostNotFoundError();
  const [post] = await withAuthors(deps, [row]);
  return post!;
}

/** listUserPosts pages through a user's live posts and replies, newest first (404 for an unknown user). */
export async function listUserPosts(deps: PostsDeps, viewerId: string, userId: string, q: PageQuery): Promise<Page<Post>> {
  const after = decodeCursor(q.cursor, PostCursor)?.[0] ?? null;
  await deps.users.getAccount(userId);
  const sql = rawSql(deps.db);
  const rows = await sql<PostRow[]>`
    select ${columns(sql, viewerId)} from posts.posts p
    where p.author_id = ${userId} and p.deleted_at is null and (${after}::uuid is null or p.id < ${after}::uuid)
    order by p.id desc limit ${q.limit + 1}`;
  const p = page(rows, q.limit, (r) => [r.id]);
  return { items: await withAuthors(deps, p.items), nextCursor: p.nextCursor };
}

/** listReplies pages through a live post's live replies, oldest first, as a conversation reads. */
export async function listReplies(deps: PostsDeps, viewerId: string, postId: string, q: PageQuery): Promise<Page<Post>> {
  const after = decodeCursor(q.cursor, PostCursor)?.[0] ?? null;
  const sql = rawSql(deps.db);
  const [parent] = await sql`select 1 from posts.posts where id = ${postId} and deleted_at is null`;
  if (!parent) throw new PostNotFoundError();
  const rows = await sql<PostRow[]>`
    select ${columns(sql, viewerId)} from posts.posts p
    where p.in_reply_to_id = ${postId} and p.deleted_at is null and (${after}::uuid is null or p.id > ${after}::uuid)
    order by p.id limit ${q.limit + 1}`;
  const p = page(rows, q.limit, (r) => [r.id]);
  return { items: await withAuthors(deps, p.items), nextCursor: p.nextCursor };
}

/** getPosts returns the live posts among `ids`, in the order of `ids` (deleted and unknown ones left out). */
export async function getPosts(deps: PostsDeps, viewerId: string, ids: string[]): Promise<Post[]> {
  if (ids.length === 0) return [];
  const sql = rawSql(deps.db);
  const rows = await sql<PostRow[]>`
    select ${columns(sql, viewerId)} from posts.posts p
    where p.id = any(${ids}::uuid[]) and p.deleted_at is null`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  return withAuthors(
    deps,
    ids.flatMap((id) => byId.get(id) ?? []),
  );
}
