import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";
import { caughtUp, FAN_OUT_EVENTS } from "../support/social.ts";
import { openSse } from "../support/sse.ts";

// The social network end to end, over real HTTP (a listening server, fetch on the loopback):
// four people who follow each other, a celebrity above a lowered threshold, a returning
// inactive reader, unfollows, deletions, likes, replies and search. Each step builds on the
// ones before it, so the steps run in order.

const CELEBRITY_THRESHOLD = 3; // each of the four has 3 followers (not above), the star has 4
// Short, so that the returning reader's cached page can expire within the test, as it would have
// long before 30 days away; the steps before it run well within it.
const CACHE_TTL_SECONDS = 3;

let s: TestServer;
let base: string;
beforeAll(async () => {
  s = await startTestServer({
    WORKER_POLL_MS: "50",
    CELEBRITY_FOLLOWER_THRESHOLD: String(CELEBRITY_THRESHOLD),
    TIMELINE_CACHE_TTL_SECONDS: String(CACHE_TTL_SECONDS),
  });
  base = `http://127.0.0.1:${s.listen()}/api/v1`;
});
afterAll(() => s?.close());

type Person = { id: string; username: string; token: string };
type Post = { id: string; authorId: string; author: { username: string } | null; content: string; likesCount: number; repliesCount: number; tags: string[] };
type Page<T> = { items: T[]; nextCursor: string | null };

const call = async (who: Person | null, method: string, path: string, json?: unknown) => {
  const headers: Record<string, string> = {};
  if (who) headers.authorization = `Bearer ${who.token}`;
  if (json !== undefined) headers["content-type"] = "application/json";
  return fetch(`${base}${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
};
const ok = async <T>(who: Person, method: string, path: string, json?: unknown, status = 200): Promise<T> => {
  const res = await call(who, method, path, json);
  const text = await res.text();
  expect({ path, status: res.status, text: res.status === status ? "" : text }).toEqual({ path, status, text: "" });
  return (text ? JSON.parse(text) : undefined) as T;
};
const register = async (name: string): Promise<Person> => {
  const username = `${name}_${Date.now().toString(36)}`;
  const made = await fetch(`${base}/users`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: "password123" }),
  });
  expect(made.status).toBe(201);
  const { id } = (await made.json()) as { id: string };
  const login = await fetch(`${base}/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ login: username, password: "password123" }),
  });
  expect(login.status).toBe(200);
  return { id, username, token: ((await login.json()) as { accessToken: string }).accessToken };
};
const post = async (who: Person, content: string, extra: Record<string, unknown> = {}) =>
  (await ok<Post>(who, "POST", "/posts", { content, ...extra }, 201)).id;
/** timeline walks the caller's whole timeline, `limit` per page, returning the contents newest first. */
const timeline = async (who: Person, limit = 3) => {
  const items: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const page: Page<Post> = await ok(who, "GET", `/timeline?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items.map((p) => p.content));
    cursor = page.nextCursor;
    if (!cursor) return items;
  }
  throw new Error("timeline walk did not end");
};
const settled = () => caughtUp(s, "timelines.fan-out", FAN_OUT_EVENTS);
const indexed = () => caughtUp(s, "search.index", ["post.created", "post.deleted", "user.registered", "user.updated"]);
const stored = async (who: Person) =>
  (await s.database.sql<{ post_id: string }[]>`select post_id from timelines.entries where user_id = ${who.id} order by post_id desc`).map((r) => r.post_id);

let ann: Person, bob: Person, cat: Person, dan: Person, star: Person;
const four = () => [ann, bob, cat, dan];
const ids: Record<string, string> = {};

describe("the social network over HTTP", () => {
  it("four people follow each other (and a star); profiles count exactly", async () => {
    [ann, bob, cat, dan, star] = (await Promise.all(["ann", "bob", "cat", "dan", "star"].map(register))) as [Person, Person, Person, Person, Person];
    for (const a of four()) {
      for (const b of four()) if (a !== b) await ok(a, "PUT", `/users/${b.id}/follow`, undefined, 204);
      await ok(a, "PUT", `/users/${star.id}/follow`, undefined, 204);
      // Following again changes nothing.
      await ok(a, "PUT", `/users/${star.id}/follow`, undefined, 204);
    }
    for (const p of four()) expect(await ok(p, "GET", `/users/${p.id}`)).toMatchObject({ followersCount: 3, followingCount: 4 });
    expect(await ok(ann, "GET", `/users/${star.id}`)).toMatchObject({ followersCount: 4, followingCount: 0 });
    await settled();
  });

  it("everyone's posts reach every timeline, newest first, across pages", async () => {
    for (const [who, content] of [
      [ann, "a1 hello"],
      [bob, "b1 hello"],
      [cat, "c1 hello"],
      [dan, "d1 hello"],
      [ann, "a2 about #gardening"],
    ] as const)
      ids[content] = await post(who, content, content.startsWith("a2") ? { tags: ["Gardening"] } : {});
    await settled();
    const expected = ["a2 about #gardening", "d1 hello", "c1 hello", "b1 hello", "a1 hello"];
    for (const p of four()) expect(await timeline(p)).toEqual(expected);
    // Nobody else's: the star follows nobody and sees only their own (none yet).
    expect(await timeline(star)).toEqual([]);
    const [top] = (await ok<Page<Post>>(bob, "GET", "/timeline?limit=1")).items;
    expect(top).toMatchObject({ id: ids["a2 about #gardening"], authorId: ann.id, author: { username: ann.username }, tags: ["gardening"] });
  });

  it("merges the celebrity's posts at read time instead of fanning them out", async () => {
    ids.s1 = await post(star, "s1 from the star");
    await settled();
    // Not fanned out: no follower's stored timeline holds it.
    for (const p of four()) expect(await stored(p)).not.toContain(ids.s1);
    // Yet every follower reads it first, also those whose first page was cached before it.
    for (const p of four()) expect((await timeline(p))[0]).toBe("s1 from the star");
    expect(await timeline(star)).toEqual(["s1 from the star"]);
  });

  it("gives a returning inactive reader a full timeline", async () => {
    // Dan has not read for 31 days (a test cannot wait a month): fan-out skips him, and his cached
    // first page is long gone (here: one TTL).
    await s.database.sql`update timelines.readers set last_active_at = now() - interval '31 days' where user_id = ${dan.id}`;
    await Bun.sleep(CACHE_TTL_SECONDS * 1000 + 100);
    ids.a3 = await post(ann, "a3 while dan was away");
    ids.b2 = await post(bob, "b2 while dan was away");
    await settled();
    expect(await stored(dan)).not.toContain(ids.a3);
    const full = ["b2 while dan was away", "a3 while dan was away", "s1 from the star", "a2 about #gardening", "d1 hello", "c1 hello", "b1 hello", "a1 hello"];
    expect(await timeline(dan)).toEqual(full);
    expect(await timeline(ann)).toEqual(full);
    // And he is active again: the next post reaches him by fan-out.
    ids.c2 = await post(cat, "c2 welcome back");
    await settled();
    expect(await stored(dan)).toContain(ids.c2);
  });

  it("removes an unfollowed author's posts and a deleted post", async () => {
    await ok(cat, "DELETE", `/users/${bob.id}/follow`, undefined, 204);
    await ok(cat, "DELETE", `/users/${bob.id}/follow`, undefined, 204);
    await settled();
    const catSees = await timeline(cat);
    expect(catSees.filter((c) => c.startsWith("b"))).toEqual([]);
    expect(await ok(cat, "GET", `/users/${bob.id}`)).toMatchObject({ followersCount: 2 });

    await ok(ann, "DELETE", `/posts/${ids["a1 hello"]}`, undefined, 204);
    await settled();
    for (const p of four()) {
      expect(await timeline(p)).not.toContain("a1 hello");
      expect(await stored(p)).not.toContain(ids["a1 hello"]);
    }
    // The celebrity deletes too: gone from the merge.
    await ok(star, "DELETE", `/posts/${ids.s1}`, undefined, 204);
    await settled();
    for (const p of four()) expect(await timeline(p)).not.toContain("s1 from the star");
  });

  it("counts likes and replies, and replies reach the timelines", async () => {
    const target = ids["a2 about #gardening"]!;
    for (const p of [bob, cat, dan, bob]) await ok(p, "PUT", `/posts/${target}/like`, undefined, 204);
    await ok(dan, "DELETE", `/posts/${target}/like`, undefined, 204);
    ids.reply = (await ok<Post>(dan, "POST", "/posts", { content: "d2 lovely garden", inReplyToId: target }, 201)).id;
    expect(await ok(ann, "GET", `/posts/${target}`)).toMatchObject({ likesCount: 2, repliesCount: 1 });
    const replies = await ok<Page<Post>>(ann, "GET", `/posts/${target}/replies`);
    expect(replies.items.map((r) => r.id)).toEqual([ids.reply]);
    await settled();
    expect((await timeline(ann))[0]).toBe("d2 lovely garden");
  });

  it("finds posts by words and tags, and people by name prefix", async () => {
    await indexed();
    const posts = await ok<Page<Post>>(bob, "GET", "/search?q=gardening");
    // The tagged post ranks above the reply that only says "garden" (stemmed to the same word).
    expect(posts.items.map((p) => p.content)).toEqual(["a2 about #gardening", "d2 lovely garden"]);
    expect((await ok<Page<Post>>(bob, "GET", "/search?q=hello")).items.map((p) => p.content).sort()).toEqual(["b1 hello", "c1 hello", "d1 hello"]);
    const people = await ok<Page<{ id: string; username: string }>>(bob, "GET", `/search?type=users&q=${ann.username.slice(0, 5).toUpperCase()}`);
    expect(people.items.map((u) => u.id)).toEqual([ann.id]);
  });

  it("leaves timelines, counts and search as they are when every event is delivered again (a replay from the start)", async () => {
    const snapshot = async () => ({
      entries: [...(await s.database.sql`select user_id, post_id, author_id from timelines.entries order by user_id, post_id`)],
      follows: [...(await s.database.sql`select follower_id, followee_id from timelines.follows order by 1, 2`)],
      authors: [...(await s.database.sql`select author_id, followers_count, merged_on_read from timelines.authors order by 1`)],
      posts: [...(await s.database.sql`select post_id, author_id, deleted, fanned_out from timelines.posts order by 1`)],
      search: [...(await s.database.sql`select post_id, deleted, document::text from search.posts order by 1`)],
      people: [...(await s.database.sql`select user_id, username, display_name from search.users order by 1`)],
      counts: [...(await s.database.sql`select id, posts_count, followers_count, following_count from users.accounts order by 1`)],
    });
    await settled();
    await indexed();
    const before = await snapshot();
    const admin = { id: "", username: "admin", token: await s.adminToken() };
    for (const name of ["timelines.fan-out", "search.index", "users.count-posts"]) {
      expect(await ok(admin, "POST", `/admin/subscriptions/${name}/replay`, { from: 0 })).toMatchObject({ name });
    }
    await settled();
    await indexed();
    await caughtUp(s, "users.count-posts", ["post.created", "post.deleted"]);
    const after = await snapshot();
    // The replay re-marks followers active (a follow counts as activity): compare without times.
    expect(after).toEqual(before);
    expect(await timeline(ann)).toEqual(await timeline(ann, 100));
  });

  // Notifications, between two newcomers so that the counts are exact: follows, a post, a like
  // and a reply, each told to the right person once, and the follow live on the stream.
  describe("notifications", () => {
    type Note = { id: string; type: string; title: string; message: string; data: Record<string, unknown>; read: boolean; createdAt: string };
    let eve: Person, fay: Person;
    const notified = () => caughtUp(s, "notifications.notify", ["user.followed", "post.created", "post.liked"]);
    const inbox = async (who: Person, unread = false) =>
      (await ok<Page<Note>>(who, "GET", `/notifications?limit=50${unread ? "&unread=true" : ""}`)).items.map((n) => n.type).sort();
    const unreadCount = async (who: Person) => (await ok<{ count: number }>(who, "GET", "/notifications/unread-count")).count;

    it("reach the SSE stream as new_follower within one second", async () => {
      [eve, fay] = (await Promise.all(["eve", "fay"].map(register))) as [Person, Person];
      const stream = await openSse(`${base}/notifications/stream`, fay.token);
      try {
        expect(stream.status).toBe(200);
        const started = performance.now();
        await ok(eve, "PUT", `/users/${fay.id}/follow`, undefined, 204);
        const e = await stream.next((x) => x.event === "notification", 1000);
        expect(e.at - started).toBeLessThan(1000);
        expect(JSON.parse(e.data)).toMatchObject({ type: "new_follower", read: false, data: { followerId: eve.id } });
      } finally {
        stream.close();
      }
    });

    it("arrive with correct unread counts, once each, for follows, posts, likes and replies", async () => {
      await ok(fay, "PUT", `/users/${eve.id}/follow`, undefined, 204);
      await post(eve, "e1 news for my followers");
      const fays = await post(fay, "f1 my first post");
      await ok(eve, "PUT", `/posts/${fays}/like`, undefined, 204);
      await ok(eve, "PUT", `/posts/${fays}/like`, undefined, 204); // a repeat like is no new like
      await post(eve, "e2 a reply", { inReplyToId: fays });
      await notified();
      // fay: eve followed, eve posted (fay follows eve), eve liked, eve replied (a reply tells its
      // parent's author once, as a reply, not also as a new post).
      expect(await inbox(fay)).toEqual(["new_follower", "new_post", "post_liked", "post_replied"]);
      expect(await unreadCount(fay)).toBe(4);
      // eve: fay followed, fay posted; nobody is told of their own actions.
      expect(await inbox(eve)).toEqual(["new_follower", "new_post"]);
      expect(await unreadCount(eve)).toBe(2);

      const [first] = (await ok<Page<Note>>(fay, "GET", "/notifications?limit=1")).items;
      expect(first).toBeDefined();
      // eve cannot mark fay's notification read.
      await ok(eve, "POST", `/notifications/${first!.id}/read`, undefined, 404);
      expect(await unreadCount(fay)).toBe(4);
      expect(await ok<Note>(fay, "POST", `/notifications/${first!.id}/read`)).toMatchObject({ id: first!.id, read: true });
      expect(await unreadCount(fay)).toBe(3);
      expect(await inbox(fay, true)).toHaveLength(3);
      await ok(fay, "POST", "/notifications/read-all");
      expect(await unreadCount(fay)).toBe(0);
      expect(await inbox(fay, true)).toEqual([]);
      expect(await unreadCount(eve)).toBe(2);
    });
  });
});
