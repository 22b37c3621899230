import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { expectProblem, fieldPaths } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

let s: TestServer;
let admin: QuickUser;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" });
  admin = { id: "", username: "root_admin", token: await s.adminToken() };
});
afterAll(() => s.close());

type PostBody = {
  id: string;
  authorId: string;
  author: { id: string; username: string; displayName: string } | null;
  content: string;
  mediaUrls: string[];
  tags: string[];
  inReplyToId: string | null;
  likesCount: number;
  repliesCount: number;
  likedByMe: boolean;
  createdAt: string;
};

const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const post = async (u: QuickUser, body: Record<string, unknown>) => {
  const res = await as(u, "/posts", { method: "POST", json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as PostBody;
};
const read = async (u: QuickUser, id: string) => {
  const res = await as(u, `/posts/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as PostBody;
};
const events = (type: string, subject: string) =>
  s.database.sql<{ data: Record<string, unknown> }[]>`select data from outbox.events where type = ${type} and subject = ${subject} order by position`;

describe("publishing", () => {
  it("answers 201 with the post, its author and a location, and appends post.created with the whole post", async () => {
    const [a] = await quickUsers(s, 1, "pub");
    const res = await as(a!, "/posts", {
      method: "POST",
      json: { content: "Hello, world 👋", mediaUrls: ["https://cdn.example.com/a.png"], tags: ["Intro", "#hello", "intro"] },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as PostBody;
    expect(body).toEqual({
      id: expect.any(String),
      authorId: a!.id,
      author: { id: a!.id, username: a!.username, displayName: a!.username },
      content: "Hello, world 👋",
      mediaUrls: ["https://cdn.example.com/a.png"],
      tags: ["intro", "hello"],
      inReplyToId: null,
      likesCount: 0,
      repliesCount: 0,
      likedByMe: false,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(res.headers.get("location")).toBe(`/api/v1/posts/${body.id}`);
    expect((await events("post.created", body.id)).map((e) => e.data)).toEqual([
      {
        postId: body.id,
        authorId: a!.id,
        content: body.content,
        mediaUrls: body.mediaUrls,
        tags: ["intro", "hello"],
        inReplyToId: null,
        createdAt: body.createdAt,
      },
    ]);
    expect(await read(a!, body.id)).toEqual(body);
  });

  it("accepts 5,000 characters counted as people count them, emoji included", async () => {
    const [a] = await quickUsers(s, 1, "len");
    const created = await post(a!, { content: "😀".repeat(5000) });
    expect([...created.content]).toHaveLength(5000);
  });

  it("refuses bad content, media and tags, each by field, writing nothing", async () => {
    const [a] = await quickUsers(s, 1, "bad");
    const cases: [Record<string, unknown>, string[]][] = [
      [{}, ["content"]],
      [{ content: "" }, ["content"]],
      [{ content: "  \n " }, ["content"]],
      [{ content: "x".repeat(5001) }, ["content"]],
      [{ content: "😀".repeat(5001) }, ["content"]],
      [{ content: "ok", mediaUrls: ["http://example.com/a.png"] }, ["mediaUrls.0"]],
      [{ content: "ok", mediaUrls: ["javascript:alert(1)"] }, ["mediaUrls.0"]],
      [{ content: "ok", mediaUrls: Array.from({ length: 11 }, (_, i) => `https://example.com/${i}.png`) }, ["mediaUrls"]],
      [{ content: "ok", tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, ["tags"]],
      [{ content: "ok", tags: ["two words"] }, ["tags.0"]],
      [{ content: "ok", inReplyToId: "nope" }, ["inReplyToId"]],
      [{ content: "ok", authorId: a!.id }, ["authorId"]],
    ];
    for (const [body, paths] of cases) {
      const p = await expectProblem(await as(a!, "/posts", { method: "POST", json: body }), 400, "VALIDATION.FAILED");
      expect({ body: Object.keys(body), paths: [...new Set(fieldPaths(p))] }).toEqual({ body: Object.keys(body), paths });
    }
    const [n] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from posts.posts where author_id = ${a!.id}`;
    expect(n!.n).toBe(0);
    await expectProblem(await s.request("/api/v1/posts", { method: "POST", json: { content: "anonymous" } }), 401, "AUTH.MISSING_TOKEN");
  });

  it("replays the first answer for a repeated Idempotency-Key instead of posting twice", async () => {
    const [a] = await quickUsers(s, 1, "idem");
    const headers = { "idempotency-key": crypto.randomUUID() };
    const first = await as(a!, "/posts", { method: "POST", json: { content: "once" }, headers });
    const second = await as(a!, "/posts", { method: "POST", json: { content: "once" }, headers });
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(await second.json()).toEqual(await first.json());
    const [n] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from posts.posts where author_id = ${a!.id}`;
    expect(n!.n).toBe(1);
  });

  it("answers 404 for an unknown post and 400 for a malformed id", async () => {
    const [a] = await quickUsers(s, 1, "get");
    await expectProblem(await as(a!, `/posts/${crypto.randomUUID()}`), 404, "POSTS.NOT_FOUND");
    await expectProblem(await as(a!, "/posts/123"), 400, "VALIDATION.FAILED");
  });
});

describe("replies", () => {
  it("counts live replies exactly and lists them oldest first", async () => {
    const [a, b] = await quickUsers(s, 2, "rep");
    const parent = await post(a!, { content: "parent" });
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => post(i % 2 ? a! : b!, { content: `reply ${i}`, inReplyToId: parent.id })));
    expect(replies.every((r) => r.inReplyToId === parent.id)).toBe(true);
    expect((await read(b!, parent.id)).repliesCount).toBe(12);
    const victim = replies.find((r) => r.authorId === b!.id)!;
    expect((await as(b!, `/posts/${victim.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await read(b!, parent.id)).repliesCount).toBe(11);

    const seen: PostBody[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const res = await as(a!, `/posts/${parent.id}/replies?limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { items: PostBody[]; nextCursor: string | null };
      seen.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    const expected = replies
      .filter((r) => r.id !== victim.id)
      .map((r) => r.id)
      .sort();
    expect(seen.map((r) => r.id)).toEqual(expected);
  });

  it("refuses a reply to an unknown or deleted post with 422, leaving counts alone", async () => {
    const [a] = await quickUsers(s, 1, "rep");
    const p = await expectProblem(
      await as(a!, "/posts", { method: "POST", json: { content: "to nobody", inReplyToId: crypto.randomUUID() } }),
      422,
      "POSTS.REPLY_TARGET_NOT_FOUND",
    );
    expect(fieldPaths(p)).toEqual(["inReplyToId"]);
    const gone = await post(a!, { content: "soon gone" });
    expect((await as(a!, `/posts/${gone.id}`, { method: "DELETE" })).status).toBe(204);
    await expectProblem(await as(a!, "/posts", { method: "POST", json: { content: "late", inReplyToId: gone.id } }), 422, "POSTS.REPLY_TARGET_NOT_FOUND");
    await expectProblem(await as(a!, `/posts/${gone.id}/replies`), 404, "POSTS.NOT_FOUND");
    const [row] = await s.database.sql<{ replies_count: number }[]>`select replies_count from posts.posts where id = ${gone.id}`;
    expect(row!.replies_count).toBe(0);
  });
});

describe("deleting", () => {
  it("lets neither another user nor an anonymous caller delete a post", async () => {
    const [author, other] = await quickUsers(s, 2, "del");
    const p = await post(author!, { content: "mine" });
    await expectProblem(await as(other!, `/posts/${p.id}`, { method: "DELETE" }), 403, "POSTS.NOT_AUTHOR");
    await expectProblem(await s.request(`/api/v1/posts/${p.id}`, { method: "DELETE" }), 401, "AUTH.MISSING_TOKEN");
    expect(await read(other!, p.id)).toMatchObject({ id: p.id, content: "mine" });
    expect(await events("post.deleted", p.id)).toHaveLength(0);
  });

  it("lets the author delete once: the post is gone, a repeat is a 204 without a second event, others get 404", async () => {
    const [author, other] = await quickUsers(s, 2, "del");
    const p = await post(author!, { content: "short-lived" });
    const answers = await Promise.all([1, 2, 3].map(() => as(author!, `/posts/${p.id}`, { method: "DELETE" })));
    expect(answers.map((r) => r.status)).toEqual([204, 204, 204]);
    await expectProblem(await as(other!, `/posts/${p.id}`), 404, "POSTS.NOT_FOUND");
    await expectProblem(await as(other!, `/posts/${p.id}`, { method: "DELETE" }), 404, "POSTS.NOT_FOUND");
    expect((await events("post.deleted", p.id)).map((e) => e.data)).toEqual([{ postId: p.id, authorId: author!.id, inReplyToId: null, deletedBy: author!.id }]);
  });

  it("lets an admin delete anyone's post", async () => {
    const [author] = await quickUsers(s, 1, "del");
    const p = await post(author!, { content: "moderated" });
    expect((await as(admin, `/posts/${p.id}`, { method: "DELETE" })).status).toBe(204);
    await expectProblem(await as(author!, `/posts/${p.id}`), 404, "POSTS.NOT_FOUND");
    const [e] = await events("post.deleted", p.id);
    expect(e!.data).toMatchObject({ postId: p.id, authorId: author!.id });
    expect(e!.data.deletedBy).not.toBe(author!.id);
  });
});

describe("likes", () => {
  it("likes and unlikes idempotently, with one event per change", async () => {
    const [author, fan] = await quickUsers(s, 2, "like");
    const p = await post(author!, { content: "likeable" });
    for (let i = 0; i < 2; i++) expect((await as(fan!, `/posts/${p.id}/like`, { method: "PUT" })).status).toBe(204);
    expect(await read(fan!, p.id)).toMatchObject({ likesCount: 1, likedByMe: true });
    expect(await read(author!, p.id)).toMatchObject({ likesCount: 1, likedByMe: false });
    expect((await events("post.liked", p.id)).map((e) => e.data)).toEqual([{ postId: p.id, authorId: author!.id, userId: fan!.id }]);
    for (let i = 0; i < 2; i++) expect((await as(fan!, `/posts/${p.id}/like`, { method: "DELETE" })).status).toBe(204);
    expect(await read(fan!, p.id)).toMatchObject({ likesCount: 0, likedByMe: false });
    expect(await events("post.unliked", p.id)).toHaveLength(1);
  });

  it("answers 404 for liking an unknown or deleted post", async () => {
    const [a] = await quickUsers(s, 1, "like");
    await expectProblem(await as(a!, `/posts/${crypto.randomUUID()}/like`, { method: "PUT" }), 404, "POSTS.NOT_FOUND");
    const p = await post(a!, { content: "gone" });
    expect((await as(a!, `/posts/${p.id}`, { method: "DELETE" })).status).toBe(204);
    for (const method of ["PUT", "DELETE"]) await expectProblem(await as(a!, `/posts/${p.id}/like`, { method }), 404, "POSTS.NOT_FOUND");
  });

  it("keeps likesCount equal to the like rows while many clients like and unlike at once", async () => {
    const [author] = await quickUsers(s, 1, "hot");
    const fans = await quickUsers(s, 30, "lk");
    const p = await post(author!, { content: "hot take" });
    await Promise.all(
      fans.map(async (f, i) => {
        const steps = i % 3 === 0 ? ["PUT", "DELETE"] : i % 3 === 1 ? ["PUT", "PUT"] : ["PUT", "DELETE", "PUT", "DELETE", "PUT"];
        for (const method of steps) expect((await as(f, `/posts/${p.id}/like`, { method })).status).toBe(204);
      }),
    );
    const [row] = await s.database.sql<{ likes_count: number; rows: number }[]>`
      select likes_count, (select count(*)::int from posts.likes where post_id = ${p.id}) as rows from posts.posts where id = ${p.id}`;
    expect(row!.likes_count).toBe(row!.rows);
    expect(row!.rows).toBe(fans.filter((_, i) => i % 3 !== 0).length);
    expect((await read(author!, p.id)).likesCount).toBe(20);
  });
});

describe("a user's posts", () => {
  it("lists them newest first, deleted ones left out, each once while new posts arrive", async () => {
    const [a, viewer] = await quickUsers(s, 2, "feed");
    const made: PostBody[] = [];
    for (let i = 0; i < 7; i++) made.push(await post(a!, { content: `post ${i}` }));
    expect((await as(a!, `/posts/${made[3]!.id}`, { method: "DELETE" })).status).toBe(204);
    const seen: PostBody[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const res = await as(viewer!, `/users/${a!.id}/posts?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { items: PostBody[]; nextCursor: string | null };
      seen.push(...page.items);
      await post(a!, { content: `arrives during the walk ${i}` });
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen.map((p) => p.content)).toEqual(["post 6", "post 5", "post 4", "post 2", "post 1", "post 0"]);
  });

  it("answers 404 for an unknown user and 400 for a forged cursor", async () => {
    const [a] = await quickUsers(s, 1, "feed");
    await expectProblem(await as(a!, `/users/${crypto.randomUUID()}/posts`), 404, "USERS.NOT_FOUND");
    await expectProblem(await as(a!, `/users/${a!.id}/posts?cursor=${Buffer.from('["x"]').toString("base64url")}`), 400, "PAGINATION.INVALID_CURSOR");
  });
});
