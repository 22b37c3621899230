import { z } from "zod";
import { type Db, decodeCursor, type Page, page, rawSql } from "../../src/platform.ts";
import type { UsersDeps } from "./commands.ts";
import { CannotFollowSelfError, UserNotFoundError } from "./errors.ts";
import { UserFollowed, UserUnfollowed } from "./events.ts";

type Sql = ReturnType<typeof rawSql>;

/** FollowEntry is one item of a followers or following list. */
export interface FollowEntry {
  id: string;
  username: string;
  displayName: string;
  followedAt: string;
}

/**
 * lockPair locks both accounts of a follow, in id order, before anything else in the transaction
 * and answers whether the followee exists. Taking these locks first is what keeps concurrent
 * follows free of deadlocks: two people following each other at once queue on the same first
 * row, and the key-share locks the follows foreign keys take later are on rows this transaction
 * already holds more strongly (taken after, they let a waiter queue ahead of a lock upgrade).
 * `no key update` is the lock the counter UPDATE takes anyway.
 */
async function lockPair(sql: Sql, followerId: string, followeeId: string): Promise<boolean> {
  const rows = await sql<{ id: string }[]>`
    select id from users.accounts where id in (${followerId}, ${followeeId}) order by id for no key update`;
  return rows.some((r) => r.id === followeeId);
}

async function adjustCounts(sql: Sql, followerId: string, followeeId: string, delta: 1 | -1): Promise<void> {
  await sql`
    update users.accounts
    set following_count = following_count + case when id = ${followerId} then ${delta}::int else 0 end,
        followers_count = followers_count + case when id = ${followeeId} then ${delta}::int else 0 end
    where id in (${followerId}, ${followeeId})`;
}

/**
 * follow makes `followerId` follow `followeeId`. Idempotent: following again changes nothing and
 * appends nothing; a new follow bumps both counters and appends `user.followed`, in one
 * transaction, so the counters always equal the rows.
 */
export async function follow(deps: UsersDeps, followerId: string, followeeId: string): Promise<void> {
  if (followerId === followeeId) throw new CannotFollowSelfError();
  await deps.db.transaction(async (tx) => {
    const sql = rawSql(tx);
    if (!(await lockPair(sql, followerId, followeeId))) throw new UserNotFoundError();
    const inserted = await sql`insert into users.follows (follower_id, followee_id) values (${followerId}, ${followeeId}) on conflict do nothing returning 1`;
    if (inserted.length === 0) return;
    await adjustCounts(sql, followerId, followeeId, 1);
    await deps.outbox.append(tx, [UserFollowed.with({ followerId, followeeId }, { subject: followerId })]);
  });
}

/** unfollow ends a follow. Idempotent: unfollowing someone not followed changes nothing. */
export async function unfollow(deps: UsersDeps, followerId: string, followeeId: string): Promise<void> {
  if (followerId === followeeId) throw new CannotFollowSelfError();
  await deps.db.transaction(async (tx) => {
    const sql = rawSql(tx);
    if (!(await lockPair(sql, followerId, followeeId))) throw new UserNotFoundError();
    const deleted = await sql`delete from users.follows where follower_id = ${followerId} and followee_id = ${followeeId} returning 1`;
    if (deleted.length === 0) return;
    await adjustCounts(sql, followerId, followeeId, -1);
    await deps.outbox.append(tx, [UserUnfollowed.with({ followerId, followeeId }, { subject: followerId })]);
  });
}

// A page key: the follow's time in microseconds since the epoch (exact, unlike a JS Date) and the other user's id.
const FollowCursor = z.tuple([z.string().regex(/^-?\d{1,17}$/), z.uuid()]);

type FollowRow = { id: string; username: string; display_name: string; followed_at: string; micros: string };

// ISO 8601 in UTC with milliseconds, as every timestamp the API shows.
const iso = (sql: Sql) => sql`to_char(f.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const toEntry = (r: FollowRow): FollowEntry => ({ id: r.id, username: r.username, displayName: r.display_name, followedAt: r.followed_at });

/**
 * listFollows pages through who follows `userId` (`followers`) or whom `userId` follows
 * (`following`), newest follow first, by keyset: a walk never repeats or skips a follow that
 * existed when it started.
 */
export async function listFollows(
  db: Db,
  userId: string,
  direction: "followers" | "following",
  q: { cursor?: string | undefined; limit: number },
): Promise<Page<FollowEntry>> {
  const after = decodeCursor(q.cursor, FollowCursor);
  const sql = rawSql(db);
  const [owner] = await sql`select 1 from users.accounts where id = ${userId}`;
  if (!owner) throw new UserNotFoundError();
  const afterMicros = after?.[0] ?? null;
  const afterId = after?.[1] ?? null;
  const rows =
    direction === "followers"
      ? await sql<FollowRow[]>`
          select a.id, a.username, a.display_name, ${iso(sql)} as followed_at, (extract(epoch from f.created_at) * 1000000)::bigint::text as micros
          from users.follows f join users.accounts a on a.id = f.follower_id
          where f.followee_id = ${userId}
            and (${afterMicros}::bigint is null
                 or (f.created_at, f.follower_id) < (timestamptz 'epoch' + ${afterMicros}::bigint * interval '1 microsecond', ${afterId}::uuid))
          order by f.created_at desc, f.follower_id desc
          limit ${q.limit + 1}`
      : await sql<FollowRow[]>`
          select a.id, a.username, a.display_name, ${iso(sql)} as followed_at, (extract(epoch from f.created_at) * 1000000)::bigint::text as micros
          from users.follows f join users.accounts a on a.id = f.followee_id
          where f.follower_id = ${userId}
            and (${afterMicros}::bigint is null
                 or (f.created_at, f.followee_id) < (timestamptz 'epoch' + ${afterMicros}::bigint * interval '1 microsecond', ${afterId}::uuid))
          order by f.created_at desc, f.followee_id desc
          limit ${q.limit + 1}`;
  const p = page(rows, q.limit, (r) => [r.micros, r.id]);
  return { items: p.items.map(toEntry), nextCursor: p.nextCursor };
}
