import { z } from "zod";
import { type Db, decodeCursor, type Page, page, rawSql } from "../../src/platform.ts";
import type { Post, PostsApi } from "../posts/index.ts";

/** SearchDeps are what searching needs: the index tables and the posts module's read API. */
export interface SearchDeps {
  db: Db;
  posts: Pick<PostsApi, "getPosts">;
}

/** UserHit is a person found by name. */
export interface UserHit {
  id: string;
  username: string;
  displayName: string;
}

type PageQuery = { q: string; cursor?: string | undefined; limit: number };

/*
 * Cursors. Ranked lists page by keyset on their whole sort key, never by offset, so a walk is
 * stable while posts and people arrive: every hit that existed when the walk began is served
 * once, in order; newcomers that sort before the cursor are simply not part of this walk.
 * - posts: (rank, post id), rank descending then newest first. The rank is a float4 of a fixed
 *   document and query, so it is the same on every page; it travels as Postgres prints it (the
 *   shortest text that reads back to the same float4), so the comparison is exact.
 * - users: (bucket, lower(username), user id): bucket 0 is the exact username, 1 a username
 *   prefix, 2 a display-name prefix only.
 */
const PostCursor = z.tuple([z.string().regex(/^\d+(\.\d+)?(e[-+]?\d+)?$/), z.uuid()]);
const UserCursor = z.tuple([z.number().int().min(0).max(2), z.string().max(200), z.uuid()]);

/** searchPosts finds live posts matching `q` by full-text search, best first. */
export async function searchPosts(deps: SearchDeps, viewerId: string, q: PageQuery): Promise<Page<Post>> {
  const after = decodeCursor(q.cursor, PostCursor);
  const sql = rawSql(deps.db);
  // Web-search syntax ("quoted phrases", or, -not), in the configuration the documents use.
  const rows = await sql<{ post_id: string; rank: string }[]>`
    with query as (select websearch_to_tsquery('english', ${q.q}) as tsq),
    hits as (
      select p.post_id, ts_rank_cd(p.document, query.tsq) as rank
      from search.posts p, query
      where not p.deleted and p.document @@ query.tsq
    )
    select post_id, rank::text as rank from hits
    where ${after?.[0] ?? null}::real is null or (rank, post_id) < (${after?.[0] ?? null}::real, ${after?.[1] ?? null}::uuid)
    order by rank desc, post_id desc
    limit ${q.limit + 1}`;
  const p = page(rows, q.limit, (r) => [r.rank, r.post_id]);
  // The posts module shows them as everywhere else; a post deleted since it was indexed is left out.
  return {
    items: await deps.posts.getPosts(
      viewerId,
      p.items.map((r) => r.post_id),
    ),
    nextCursor: p.nextCursor,
  };
}

// LIKE's wildcards and its escape character, taken literally in a prefix.
const likePrefix = (s: string) => `${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** searchUsers finds people whose username or display name starts with `q` (any case): exact username first, then username prefixes, then display names. */
export async function searchUsers(deps: SearchDeps, q: PageQuery): Promise<Page<UserHit>> {
  const after = decodeCursor(q.cursor, UserCursor);
  const sql = rawSql(deps.db);
  const exact = q.q.toLowerCase();
  const prefix = likePrefix(q.q);
  const rows = await sql<{ user_id: string; username: string; display_name: string; bucket: number; name: string }[]>`
    select * from (
      select user_id, username, display_name, lower(username) as name,
             case when lower(username) = ${exact} then 0 when lower(username) like ${prefix} then 1 else 2 end as bucket
      from search.users
      where lower(username) like ${prefix} or lower(display_name) like ${prefix}
    ) u
    where ${after?.[0] ?? null}::int is null or (bucket, name, user_id) > (${after?.[0] ?? null}::int, ${after?.[1] ?? null}::text collate "C", ${after?.[2] ?? null}::uuid)
    order by bucket, name collate "C", user_id
    limit ${q.limit + 1}`;
  const p = page(rows, q.limit, (r) => [r.bucket, r.name, r.user_id]);
  return { items: p.items.map((r) => ({ id: r.user_id, username: r.username, displayName: r.display_name })), nextCursor: p.nextCursor };
}
