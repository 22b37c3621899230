import { z } from "zod";
import { type Db, decodeCursor, type Page, page, rawSql } from "../../src/platform.ts";
import type { Post, PostsApi } from "../posts/index.ts";
import type { TimelineCache } from "./cache.ts";
import { TIMELINE_CAP, trim } from "./fan-out.ts";

/** TimelineDeps are what reading a timeline needs: its tables and the posts module's read API. */
export interface TimelineDeps {
  db: Db;
  posts: Pick<PostsApi, "getPosts">;
  /** A reader inactive this long was skipped by fan-out: their timeline is rebuilt on read. */
  inactiveDays: number;
  /** The first-page cache (Redis or memory); without one every read goes to Postgres. */
  cache?: TimelineCache;
}

/** rebuild merges the newest posts of `userId` and their followees into their timeline, capped. */
async function rebuild(sql: ReturnType<typeof rawSql>, userId: string): Promise<void> {
  await sql`
    insert into timelines.entries (user_id, post_id, author_id)
    select ${userId}, p.post_id, p.author_id from timelines.posts p
    where not p.deleted
      and (p.author_id = ${userId} or p.author_id in (select followee_id from timelines.follows where follower_id = ${userId}))
    order by p.post_id desc limit ${TIMELINE_CAP}
    on conflict do nothing`;
  await trim(sql, [userId]);
}

const TimelineCursor = z.tuple([z.uuid()]);

/**
 * readTimeline returns a page of `userId`'s home timeline, newest first. The first page marks
 * the reader active and, for a reader whose timeline fan-out may have skipped (empty, never read,
 * or inactive for `inactiveDays`), first merges in the newest posts of the people followed, so a
 * returning user never sees an empty or stale timeline while they have posts. Posts deleted since
 * fan-out are left out.
 */
export async function readTimeline(deps: TimelineDeps, userId: string, q: { cursor?: string | undefined; limit: number }): Promise<Page<Post>> {
  const after = decodeCursor(q.cursor, TimelineCursor)?.[0] ?? null;
  const sql = rawSql(deps.db);
  if (!after) {
    const [reader] = await sql<{ stale: boolean }[]>`
      with prev as (select last_active_at from timelines.readers where user_id = ${userId}),
      mark as (
        insert into timelines.readers (user_id) values (${userId})
        on conflict (user_id) do update set last_active_at = now()
      )
      select coalesce((select last_active_at <= now() - make_interval(days => ${deps.inactiveDays}) from prev), true)
          or not exists(select 1 from timelines.entries where user_id = ${userId}) as stale`;
    if (reader!.stale) await rebuild(sql, userId);
  }
  // The stored entries, merged with the followees' posts that were never fanned out (celebrities'),
  // under one keyset: post ids order both sources the same way.
  const rows = await sql<{ post_id: string }[]>`
    select post_id from (
      (select post_id from timelines.entries
       where user_id = ${userId} and (${after}::uuid is null or post_id < ${after}::uuid)
       order by post_id desc limit ${q.limit + 1})
      union
      select c.post_id
      from timelines.follows f
      join timelines.authors a on a.author_id = f.followee_id and a.merged_on_read
      cross join lateral (
        select post_id from timelines.posts p
        where p.author_id = f.followee_id and not p.fanned_out and not p.deleted and (${after}::uuid is null or p.post_id < ${after}::uuid)
        order by p.post_id desc limit ${q.limit + 1}
      ) c
      where f.follower_id = ${userId}
    ) merged
    order by post_id desc limit ${q.limit + 1}`;
  // The cursor is the last entry served, even when its post was deleted since: the walk goes on from there.
  const p = page(rows, q.limit, (r) => [r.post_id]);
  return {
    items: await deps.posts.getPosts(
      userId,
      p.items.map((r) => r.post_id),
    ),
    nextCursor: p.nextCursor,
  };
}

/**
 * timelineBody answers a timeline request as its JSON body. The first page comes from the cache
 * when it holds it; otherwise (a miss, or the cache failing) from Postgres, and is cached unless
 * the timeline changed meanwhile. Later pages are never cached: the cursor makes them rare and
 * unbounded in number. A page this process holds (the memory cache, a local copy of a Redis page)
 * is answered at once, without a promise; anything else as a promise.
 */
export function timelineBody(
  deps: TimelineDeps,
  userId: string,
  q: { cursor?: string | undefined; limit: number },
): string | Uint8Array | Promise<string | Uint8Array> {
  const cache = deps.cache;
  if (q.cursor !== undefined || !cache) return readTimeline(deps, userId, q).then((p) => JSON.stringify(p));
  const cached = cache.lookup(userId, q.limit);
  if (!(cached instanceof Promise)) return "hit" in cached ? cached.hit : readAndStore(deps, cache, userId, q, cached.miss);
  return cached.then((c) => ("hit" in c ? c.hit : readAndStore(deps, cache, userId, q, c.miss)));
}

async function readAndStore(deps: TimelineDeps, cache: TimelineCache, userId: string, q: { limit: number }, generation: string | null): Promise<string> {
  const body = JSON.stringify(await readTimeline(deps, userId, q));
  await cache.store(userId, q.limit, generation, body);
  return body;
}
