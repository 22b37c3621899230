import { afterCommit, type Db, defineSubscription, type EnvelopeOf, rawSql } from "../../src/platform.ts";
import { PostCreated, PostDeleted } from "../posts/events.ts";
import { UserFollowed, UserUnfollowed } from "../users/events.ts";
import type { TimelineCache } from "./cache.ts";

/** TIMELINE_CAP is the most entries a home timeline keeps; older ones are trimmed on write. */
export const TIMELINE_CAP = 800;
/** MERGE_ON_FOLLOW is how many of a followee's latest posts a new follow merges in. */
export const MERGE_ON_FOLLOW = 100;

/** FanOutOptions tune fan-out; the composition root takes them from configuration. */
export interface FanOutOptions {
  /** Followers who have neither read their timeline nor followed anyone for this long are skipped; their next read rebuilds it. */
  inactiveDays: number;
  /** Authors with more followers than this are not fanned out: their posts are merged in on read. */
  celebrityThreshold: number;
  /** The first-page cache to invalidate for every timeline a batch changed (after it commits). */
  cache?: TimelineCache;
  /** How long a cached page may live: followers who read within it may hold a merged-on-read post that was deleted. */
  cacheTtlSeconds?: number;
  /**
   * With a database, timelines that grew are trimmed just after the batch commits, in chunks of
   * their own, instead of inside it: a post is visible in every timeline without waiting for the
   * trim (which reads up to TIMELINE_CAP entries of each follower). Without one, inside the batch.
   */
  db?: Db;
}

// Readers per trim statement when trimming after commit.
const TRIM_CHUNK = 1000;

type Sql = ReturnType<typeof rawSql>;
type Handled = EnvelopeOf<typeof PostCreated | typeof PostDeleted | typeof UserFollowed | typeof UserUnfollowed>;

// Advisory lock class of this module (the two-key form keeps it apart from single-key locks).
const LOCK_CLASS = 7_401;

/**
 * The author whose posts an event touches. Post events and follow events live in different
 * partitions (their subjects differ), so a post's fan-out and a follow of its author can run at
 * once; each would miss the other's uncommitted row (the post not merged, the follower not fanned
 * out to). Locking the author first serialises exactly those two, and whichever runs second sees
 * the other's committed row.
 */
const authorOf = (e: Handled) => (e.type === "post.created" || e.type === "post.deleted" ? e.data.authorId : e.data.followeeId);

async function lockAuthors(sql: Sql, authors: string[]): Promise<void> {
  // Sorted, so two batches touching the same authors take their locks in the same order.
  const keys = [...new Set(authors)].sort();
  await sql`select pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(k)) from (select k from unnest(${keys}::text[]) k order by k) s`;
}

/** trim keeps each of `users`' timelines to its newest TIMELINE_CAP entries: one statement for them all. */
export async function trim(sql: Sql, users: string[]): Promise<void> {
  if (users.length === 0) return;
  await sql`
    delete from timelines.entries e
    using (
      select u.user_id,
             (select post_id from timelines.entries where user_id = u.user_id order by post_id desc offset ${TIMELINE_CAP} limit 1) as cutoff
      from unnest(${[...new Set(users)]}::uuid[]) u(user_id)
    ) c
    where e.user_id = c.user_id and c.cutoff is not null and e.post_id <= c.cutoff`;
}

/** onPostCreated fans a post out; returns the timelines that grew and the cached pages that hold the post only by merging. */
async function onPostCreated(sql: Sql, e: EnvelopeOf<typeof PostCreated>, opts: FanOutOptions): Promise<{ grown: string[]; merged: string[] }> {
  const { postId, authorId } = e.data;
  // One statement for every follower (and the author's own timeline). A post already projected
  // (a redelivery) or tombstoned (deleted before this copy arrived) is not fanned out again.
  const rows = await sql<{ user_id: string }[]>`
    with author as (
      select coalesce((select followers_count from timelines.authors where author_id = ${authorId}), 0) > ${opts.celebrityThreshold} as celebrity
    ),
    p as (
      insert into timelines.posts (post_id, author_id, fanned_out) select ${postId}, ${authorId}, not celebrity from author
      on conflict do nothing
      returning post_id, author_id, fanned_out
    ),
    merged as (
      insert into timelines.authors (author_id, merged_on_read) select author_id, true from p where not fanned_out
      on conflict (author_id) do update set merged_on_read = true
    )
    insert into timelines.entries (user_id, post_id, author_id)
    select r.user_id, p.post_id, p.author_id
    from p, lateral (
      select f.follower_id as user_id
      from timelines.follows f join timelines.readers r on r.user_id = f.follower_id
      where p.fanned_out and f.followee_id = p.author_id and r.last_active_at > now() - make_interval(days => ${opts.inactiveDays})
      union
      select p.author_id
    ) r
    on conflict do nothing
    returning user_id`;
  const grown = rows.map((r) => r.user_id);
  // A celebrity's post was not fanned out (only the author's own timeline got it); the followers'
  // cached pages must still show it.
  let merged: string[] = [];
  if (opts.cache && grown.length === 1 && grown[0] === authorId) {
    const [p] = await sql<{ fanned_out: boolean }[]>`select fanned_out from timelines.posts where post_id = ${postId}`;
    if (p && !p.fanned_out) merged = await cachedFollowers(sql, authorId, opts);
  }
  return { grown, merged };
}

async function onPostDeleted(sql: Sql, e: EnvelopeOf<typeof PostDeleted>, opts: FanOutOptions): Promise<string[]> {
  const { postId, authorId } = e.data;
  const [post] = await sql<{ fanned_out: boolean }[]>`
    insert into timelines.posts (post_id, author_id, deleted) values (${postId}, ${authorId}, true)
    on conflict (post_id) do update set deleted = true
    returning fanned_out`;
  const rows = await sql<{ user_id: string }[]>`delete from timelines.entries where post_id = ${postId} returning user_id`;
  const touched = rows.map((r) => r.user_id);
  // A celebrity's post was merged on read, so it may sit in cached pages.
  if (!post!.fanned_out) touched.push(...(await cachedFollowers(sql, authorId, opts)));
  return touched;
}

/**
 * cachedFollowers lists the followers of `authorId` who may hold a cached first page: those who
 * read their timeline from Postgres within the cache TTL (a cache entry lives one TTL from the
 * read that made it, and that read marks the reader active). A celebrity's post or deletion
 * invalidates only these, in Redis: no rows are written for any follower, and the rows read are
 * bounded by the readers active in the last TTL, so the hybrid still spares the database the
 * fan-out storm.
 */
async function cachedFollowers(sql: Sql, authorId: string, opts: FanOutOptions): Promise<string[]> {
  if (!opts.cache) return [];
  // Postgres walks whichever is smaller: the author's followers, or the readers active within the
  // window (by the index on last_active_at), probing the other by primary key.
  const rows = await sql<{ user_id: string }[]>`
    select r.user_id from timelines.readers r
    where r.last_active_at > now() - make_interval(secs => ${(opts.cacheTtlSeconds ?? 60) + 5})
      and exists (select 1 from timelines.follows f where f.follower_id = r.user_id and f.followee_id = ${authorId})`;
  return rows.map((r) => r.user_id);
}

async function onFollowed(sql: Sql, e: EnvelopeOf<typeof UserFollowed>): Promise<string[]> {
  const { followerId, followeeId } = e.data;
  // The author's follower count moves only when the follow row does, so a redelivery leaves it alone.
  await sql`
    with f as (
      insert into timelines.follows (follower_id, followee_id) values (${followerId}, ${followeeId})
      on conflict do nothing returning followee_id
    ),
    c as (
      insert into timelines.authors (author_id, followers_count) select followee_id, 1 from f
      on conflict (author_id) do update set followers_count = timelines.authors.followers_count + 1
    )
    insert into timelines.readers (user_id) values (${followerId})
    on conflict (user_id) do update set last_active_at = greatest(timelines.readers.last_active_at, excluded.last_active_at)`;
  // Merge the followee's latest posts, so a new follow shows at once. A replayed follow that was
  // undone later is undone again by its unfollow, which follows it in this partition.
  await sql`
    insert into timelines.entries (user_id, post_id, author_id)
    select ${followerId}, post_id, author_id from timelines.posts
    where author_id = ${followeeId} and not deleted
    order by post_id desc limit ${MERGE_ON_FOLLOW}
    on conflict do nothing`;
  return [followerId];
}

async function onUnfollowed(sql: Sql, e: EnvelopeOf<typeof UserUnfollowed>): Promise<string[]> {
  const { followerId, followeeId } = e.data;
  await sql`
    with f as (delete from timelines.follows where follower_id = ${followerId} and followee_id = ${followeeId} returning followee_id),
    c as (update timelines.authors set followers_count = followers_count - 1 where author_id in (select followee_id from f))
    delete from timelines.entries where user_id = ${followerId} and author_id = ${followeeId}`;
  // Also when no entry went: the followee's merged-on-read posts leave the page.
  return [followerId];
}

/**
 * fanOutSubscription builds home timelines on write: `post.created` adds the post to every
 * active follower's timeline in one statement (unless the author has more followers than the
 * celebrity threshold: those posts are merged on read), `post.deleted` removes it everywhere, a follow merges
 * the followee's latest posts, an unfollow removes them; timelines that grew are trimmed to
 * TIMELINE_CAP (in one statement per batch, or just after it commits when given a database: the
 * trim enforces the whole cap each time, so one that is lost to a crash is made up by the next). Every step is idempotent (inserts skip what exists,
 * a deleted post stays tombstoned), so a redelivered event changes nothing. Once the batch has
 * committed, the cached first page of every timeline it changed is invalidated.
 */
export function fanOutSubscription(opts: FanOutOptions) {
  // Trims after commit run one at a time in this process, so two never contend for the same rows.
  let trimming: Promise<void> = Promise.resolve();
  const trimAfterCommit = (db: Db, users: string[]) =>
    afterCommit(() => {
      const run = trimming.then(async () => {
        const sorted = [...new Set(users)].sort();
        for (let i = 0; i < sorted.length; i += TRIM_CHUNK) await trim(rawSql(db), sorted.slice(i, i + TRIM_CHUNK));
      });
      trimming = run.catch(() => {});
      return run; // a failure is reported; the next fan-out to these readers trims them again
    });
  return defineSubscription({
    name: "timelines.fan-out",
    on: [PostCreated, PostDeleted, UserFollowed, UserUnfollowed],
    partitions: 4,
    // It writes timelines only: declared so, a celebrity's long fan-out never holds back others' reads.
    appends: false,
    handleBatch: async (events, { sql }) => {
      await lockAuthors(sql, events.map(authorOf));
      const grown: string[] = [];
      const changed: string[] = [];
      for (const e of events) {
        switch (e.type) {
          case "post.created":
            {
              const r = await onPostCreated(sql, e, opts);
              grown.push(...r.grown);
              changed.push(...r.merged);
            }
            break;
          case "post.deleted":
            changed.push(...(await onPostDeleted(sql, e, opts)));
            break;
          case "user.followed":
            grown.push(...(await onFollowed(sql, e)));
            break;
          case "user.unfollowed":
            changed.push(...(await onUnfollowed(sql, e)));
            break;
        }
      }
      if (opts.db) {
        if (grown.length) trimAfterCommit(opts.db, grown);
      } else {
        await trim(sql, grown);
      }
      const cache = opts.cache;
      const touched = [...new Set([...grown, ...changed])];
      // After commit: invalidated earlier, a read could cache the old timeline again before it commits.
      if (cache && touched.length) afterCommit(() => cache.invalidate(touched));
    },
  });
}
