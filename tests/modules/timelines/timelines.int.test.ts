import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { fanOutSubscription, TIMELINE_CAP } from "../../../modules/timelines/fan-out.ts";
import { rawSql } from "../../../src/platform.ts";
import { eventually } from "../../support/eventually.ts";
import { expectProblem } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

// Workers on: timelines are built by the fan-out subscription.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "100", CELEBRITY_FOLLOWER_THRESHOLD: "3" });
});
afterAll(() => s.close());

type Item = { id: string; authorId: string; author: { username: string } | null; content: string };
const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const follow = async (a: QuickUser, b: QuickUser, method = "PUT") => expect((await as(a, `/users/${b.id}/follow`, { method })).status).toBe(204);
const post = async (u: QuickUser, content: string) => {
  const res = await as(u, "/posts", { method: "POST", json: { content } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
};
/** stored reads a timeline's entries straight from the table, newest first, without the read path's rebuild. */
const stored = async (u: QuickUser) =>
  (await s.database.sql<{ post_id: string }[]>`select post_id from timelines.entries where user_id = ${u.id} order by post_id desc`).map((r) => r.post_id);
const timeline = async (u: QuickUser, limit = 100) => {
  const items: Item[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const res = await as(u, `/timeline?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { items: Item[]; nextCursor: string | null };
    items.push(...body.items);
    cursor = body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error("timeline walk did not end");
};
/** settled waits until the fan-out subscription has handled every event appended so far. */
const settled = () =>
  eventually(async () => {
    const [row] = await s.database.sql<{ behind: number }[]>`
      select count(*)::int as behind from outbox.events e
      where e.type in ('post.created', 'post.deleted', 'user.followed', 'user.unfollowed')
        and not exists (
          select 1 from outbox.subscriptions c
          where c.name = 'timelines.fan-out' and c.partition = ((hashtext(e.subject)::bigint % c.partitions) + c.partitions) % c.partitions
            and (c.last_transaction_id, c.last_position) >= (e.transaction_id, e.position))`;
    return row!.behind === 0;
  }, 15_000);

describe("home timelines", () => {
  it("hold one's own and one's followees' posts, newest first, and nobody else's", async () => {
    const [ann, bob, cat, dan] = await quickUsers(s, 4, "tl");
    // Everyone reads once, so fan-out counts them active.
    for (const u of [ann, bob, cat, dan]) expect((await as(u!, "/timeline")).status).toBe(200);
    await follow(ann!, bob!);
    await follow(ann!, cat!);
    await follow(bob!, ann!);
    await follow(cat!, dan!);
    await settled();
    const ids: Record<string, string> = {};
    for (const [u, name] of [
      [bob, "b1"],
      [cat, "c1"],
      [ann, "a1"],
      [dan, "d1"],
      [bob, "b2"],
    ] as const)
      ids[name] = await post(u!, name);
    await settled();
    expect((await timeline(ann!, 2)).map((i) => i.content)).toEqual(["b2", "a1", "c1", "b1"]);
    expect((await timeline(bob!)).map((i) => i.content)).toEqual(["b2", "a1", "b1"]);
    expect((await timeline(cat!)).map((i) => i.content)).toEqual(["d1", "c1"]);
    expect((await timeline(dan!)).map((i) => i.content)).toEqual(["d1"]);
    const [first] = await timeline(ann!, 1);
    expect(first).toMatchObject({ id: ids.b2, authorId: bob!.id, author: { username: bob!.username } });
  });

  it("merges a new followee's posts, and removes them on unfollow", async () => {
    const [reader, author] = await quickUsers(s, 2, "mrg");
    const old = [await post(author!, "old 1"), await post(author!, "old 2")];
    expect((await as(reader!, "/timeline")).status).toBe(200);
    await follow(reader!, author!);
    await settled();
    expect(await stored(reader!)).toEqual([...old].reverse());
    await follow(reader!, author!, "DELETE");
    await settled();
    expect(await stored(reader!)).toEqual([]);
    expect(await timeline(reader!)).toEqual([]);
  });

  it("removes a deleted post from every timeline", async () => {
    const [author, f1, f2] = await quickUsers(s, 3, "del");
    for (const f of [f1, f2]) {
      expect((await as(f!, "/timeline")).status).toBe(200);
      await follow(f!, author!);
    }
    const keep = await post(author!, "keep");
    const drop = await post(author!, "drop");
    await settled();
    expect(await stored(f1!)).toEqual([drop, keep]);
    expect((await as(author!, `/posts/${drop}`, { method: "DELETE" })).status).toBe(204);
    await settled();
    for (const u of [author, f1, f2]) expect(await stored(u!)).toEqual([keep]);
  });

  it("rebuilds the timeline of a returning user whose entries are gone", async () => {
    const [reader, a, b] = await quickUsers(s, 3, "ret");
    await follow(reader!, a!);
    await follow(reader!, b!);
    const made = [await post(a!, "a"), await post(b!, "b"), await post(a!, "a2")];
    await settled();
    await s.database.sql`delete from timelines.entries where user_id = ${reader!.id}`;
    expect((await timeline(reader!)).map((i) => i.id)).toEqual([...made].reverse());
  });

  it("skips inactive followers on fan-out and catches them up when they come back", async () => {
    const [author, active, away] = await quickUsers(s, 3, "away");
    for (const f of [active, away]) {
      expect((await as(f!, "/timeline")).status).toBe(200);
      await follow(f!, author!);
    }
    const before = await post(author!, "before");
    await settled();
    await s.database.sql`update timelines.readers set last_active_at = now() - interval '31 days' where user_id = ${away!.id}`;
    const during = await post(author!, "while away");
    await settled();
    expect(await stored(active!)).toEqual([during, before]);
    expect(await stored(away!)).toEqual([before]);
    expect((await timeline(away!)).map((i) => i.id)).toEqual([during, before]);
  });

  it(`keeps at most ${TIMELINE_CAP} entries, dropping the oldest on write`, async () => {
    const [reader, author] = await quickUsers(s, 2, "cap");
    expect((await as(reader!, "/timeline")).status).toBe(200);
    await follow(reader!, author!);
    await settled();
    // A full timeline of older entries, then one new post.
    const filler = Array.from({ length: TIMELINE_CAP }, () => randomUUIDv7());
    await s.database.sql`insert into timelines.entries (user_id, post_id, author_id) select ${reader!.id}, unnest(${filler}::uuid[]), ${author!.id}`;
    const fresh = await post(author!, "fresh");
    await settled();
    // The trim runs just after the fan-out commits.
    const ids = await eventually(async () => {
      const now = await stored(reader!);
      return now.length === TIMELINE_CAP && now;
    });
    expect(ids[0]).toBe(fresh);
    expect(ids).not.toContain(filler[0]);
    expect(ids.at(-1)).toBe(filler[1]);
  });

  it("changes nothing when every event is delivered a second time, deleted posts included", async () => {
    const [a, b] = await quickUsers(s, 2, "dup");
    expect((await as(b!, "/timeline")).status).toBe(200);
    await follow(b!, a!);
    await post(a!, "one");
    const gone = await post(a!, "gone");
    expect((await as(a!, `/posts/${gone}`, { method: "DELETE" })).status).toBe(204);
    await settled();
    const snapshot = async () => ({ a: await stored(a!), b: await stored(b!) });
    const before = await snapshot();
    const events = await s.database.sql<{ type: string; data: Record<string, unknown> }[]>`
      select type, data from outbox.events
      where type in ('post.created', 'post.deleted', 'user.followed', 'user.unfollowed')
        and (data->>'authorId' = ${a!.id} or data->>'followerId' = ${b!.id})
      order by position`;
    expect(events.length).toBe(4);
    const sub = fanOutSubscription({ inactiveDays: 30, celebrityThreshold: 3 });
    // The whole history again, then the creations once more after their deletion, as a replay could.
    for (const e of [...events, ...events.filter((e) => e.type === "post.created")]) {
      await s.database.db.transaction(async (tx) =>
        sub.handleBatch!([{ type: e.type, data: e.data }] as never, { tx, sql: rawSql(tx), subscription: sub.name, partition: 0, attempt: 2 }),
      );
    }
    expect(await snapshot()).toEqual(before);
    expect(before.b).not.toContain(gone);
  });

  it("merges a celebrity's posts on read instead of fanning them out", async () => {
    const [star, ...fans] = await quickUsers(s, 5, "celeb");
    for (const f of fans) {
      expect((await as(f, "/timeline")).status).toBe(200);
      await follow(f, star!);
    }
    // Follows and posts are different partitions: let the follows land before the star posts.
    await settled();
    const mine = await post(fans[0]!, "a fan's own");
    const hits: [string, string] = [await post(star!, "hit 1"), await post(star!, "hit 2")];
    await settled();
    // Four followers, over the threshold of three: only the star's own timeline got the posts.
    for (const f of fans) expect(await stored(f)).not.toContain(hits[1]);
    expect(await stored(star!)).toEqual([...hits].reverse());
    expect((await timeline(fans[0]!, 1)).map((i) => i.id)).toEqual([hits[1], hits[0], mine]);
    expect((await timeline(fans[1]!)).map((i) => i.id)).toEqual([hits[1], hits[0]]);
    // Unfollowing and deleting take them out of the merge too.
    expect((await as(star!, `/posts/${hits[0]}`, { method: "DELETE" })).status).toBe(204);
    await follow(fans[1]!, star!, "DELETE");
    await settled();
    expect((await timeline(fans[0]!)).map((i) => i.id)).toEqual([hits[1], mine]);
    expect(await timeline(fans[1]!)).toEqual([]);
  });

  it("walks page by page without repeats or gaps while new posts arrive", async () => {
    const [reader, author] = await quickUsers(s, 2, "walk");
    await follow(reader!, author!);
    await settled();
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push(await post(author!, `w${i}`));
    await settled();
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res = await as(reader!, `/timeline?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      const body = (await res.json()) as { items: Item[]; nextCursor: string | null };
      seen.push(...body.items.map((x) => x.id));
      // Newer posts land at the top while the walk goes on.
      await post(author!, `new ${i}`);
      await settled();
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([...made].reverse());
  });

  it("is only ever the caller's own: no token, no timeline", async () => {
    await expectProblem(await s.request("/api/v1/timeline"), 401, "AUTH.MISSING_TOKEN");
    const [a] = await quickUsers(s, 1, "priv");
    await expectProblem(await as(a!, "/timeline?cursor=zzz"), 400, "PAGINATION.INVALID_CURSOR");
  });
});
