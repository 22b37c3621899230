import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { sign } from "hono/jwt";
import { expectProblem } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { caughtUp, FAN_OUT_EVENTS, type QuickUser, quickUsers } from "../../support/social.ts";

// Privacy rules of the social modules, each attacked: people read only their own timeline; only
// a post's author or an admin deletes it.

let s: TestServer;
let alice: QuickUser, bob: QuickUser, mallory: QuickUser;
let admin: QuickUser;
const posts: Record<string, string> = {};

const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const post = async (u: QuickUser, content: string, inReplyToId?: string) => {
  const res = await as(u, "/posts", { method: "POST", json: { content, ...(inReplyToId ? { inReplyToId } : {}) } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
};
const contents = async (res: Response) => {
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: { content: string }[] }).items.map((i) => i.content);
};

beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "50" });
  [alice, bob, mallory] = (await quickUsers(s, 3, "priv")) as [QuickUser, QuickUser, QuickUser];
  admin = { id: "", username: "root_admin", token: await s.adminToken() };
  // Alice follows Bob; Mallory follows nobody and posts her own.
  expect((await as(alice, `/users/${bob.id}/follow`, { method: "PUT" })).status).toBe(204);
  await caughtUp(s, "timelines.fan-out", FAN_OUT_EVENTS);
  posts.bob = await post(bob, "bob's post");
  posts.alice = await post(alice, "alice's post");
  posts.mallory = await post(mallory, "mallory's post");
  await caughtUp(s, "timelines.fan-out", FAN_OUT_EVENTS);
});
afterAll(() => s?.close());

describe("a timeline is read only by its owner", () => {
  it("ignores every way of naming someone else in the request", async () => {
    const own = await contents(await as(mallory, "/timeline"));
    expect(own).toEqual(["mallory's post"]);
    for (const query of [`userId=${alice.id}`, `user=${alice.id}`, `user_id=${alice.id}`, `for=${alice.id}`, `id=${alice.id}`, `sub=${alice.id}`]) {
      expect(await contents(await as(mallory, `/timeline?${query}`))).toEqual(own);
    }
    for (const header of ["x-user-id", "x-forwarded-user", "x-impersonate"]) {
      expect(await contents(await as(mallory, "/timeline", { headers: { [header]: alice.id } }))).toEqual(own);
    }
    expect((await as(mallory, `/users/${alice.id}/timeline`)).status).toBe(404);
    expect((await as(mallory, `/timeline/${alice.id}`)).status).toBe(404);
  });

  it("never serves one reader's cached first page to another", async () => {
    const alicePage = await contents(await as(alice, "/timeline"));
    expect(alicePage).toEqual(["alice's post", "bob's post"]);
    // Alice's page is cached now; Mallory asks for the same page size, and Bob for another.
    expect(await contents(await as(mallory, "/timeline"))).toEqual(["mallory's post"]);
    expect(await contents(await as(bob, "/timeline?limit=20"))).toEqual(["bob's post"]);
  });

  it("walks only one's own entries with a cursor taken from someone else's walk", async () => {
    const first = await as(alice, "/timeline?limit=1");
    const { nextCursor } = (await first.json()) as { nextCursor: string };
    expect(nextCursor).toBeString();
    // Alice's cursor on Mallory's timeline: Mallory's entries older than it, never Alice's.
    const seen = await contents(await as(mallory, `/timeline?cursor=${nextCursor}`));
    for (const c of seen) expect(c).toBe("mallory's post");
  });

  it("refuses forged, tampered and unsigned tokens claiming to be its owner", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: alice.id, role: "user", username: alice.username, iss: "eventful-monolith", iat: now, exp: now + 600 };
    const forged = await sign(claims, "not-the-server-secret-0123456789abcdef", "HS256");
    const header = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${header({ alg: "none", typ: "JWT" })}.${header(claims)}.`;
    const [h, , sig] = mallory.token.split(".");
    const tampered = `${h}.${header({ ...claims })}.${sig}`;
    for (const token of [forged, unsigned, tampered]) {
      const res = await s.request("/api/v1/timeline", { token });
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    await expectProblem(await s.request("/api/v1/timeline"), 401, "AUTH.MISSING_TOKEN");
  });
});

describe("a post is deleted only by its author or an admin", () => {
  it("refuses anyone else, whoever they follow or however they ask, and the post stays everywhere", async () => {
    const target = await post(bob, "bob's to keep");
    // Alice follows Bob and replies to the post: neither makes her its owner.
    await post(alice, "alice replies", target);
    await expectProblem(await as(alice, `/posts/${target}`, { method: "DELETE" }), 403, "POSTS.NOT_AUTHOR");
    await expectProblem(await as(mallory, `/posts/${target}`, { method: "DELETE" }), 403, "POSTS.NOT_AUTHOR");
    // Naming the author in the query, a header or a body changes nothing.
    await expectProblem(await as(mallory, `/posts/${target}?authorId=${bob.id}`, { method: "DELETE" }), 403, "POSTS.NOT_AUTHOR");
    await expectProblem(await as(mallory, `/posts/${target}`, { method: "DELETE", headers: { "x-user-id": bob.id } }), 403, "POSTS.NOT_AUTHOR");
    const withBody = await as(mallory, `/posts/${target}`, { method: "DELETE", json: { authorId: bob.id, role: "admin" } });
    expect([400, 403]).toContain(withBody.status);
    // A token claiming the admin role without the server's signature.
    const now = Math.floor(Date.now() / 1000);
    const fakeAdmin = await sign(
      { sub: mallory.id, role: "admin", username: mallory.username, iss: "eventful-monolith", iat: now, exp: now + 600 },
      "not-the-server-secret-0123456789abcdef",
      "HS256",
    );
    expect((await s.request(`/api/v1/posts/${target}`, { method: "DELETE", token: fakeAdmin })).status).toBe(401);
    await expectProblem(await s.request(`/api/v1/posts/${target}`, { method: "DELETE" }), 401, "AUTH.MISSING_TOKEN");
    // Still there, for everyone, and nothing was published.
    expect((await as(mallory, `/posts/${target}`)).status).toBe(200);
    const [deleted] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from outbox.events where type = 'post.deleted' and subject = ${target}`;
    expect(deleted!.n).toBe(0);
    await caughtUp(s, "timelines.fan-out", FAN_OUT_EVENTS);
    expect(await contents(await as(alice, "/timeline"))).toContain("bob's to keep");
  });

  it("lets the author and an admin delete, and then the post is gone from timelines", async () => {
    expect((await as(bob, `/posts/${posts.bob}`, { method: "DELETE" })).status).toBe(204);
    expect((await as(admin, `/posts/${posts.mallory}`, { method: "DELETE" })).status).toBe(204);
    await caughtUp(s, "timelines.fan-out", FAN_OUT_EVENTS);
    expect(await contents(await as(alice, "/timeline"))).not.toContain("bob's post");
    expect(await contents(await as(mallory, "/timeline"))).toEqual([]);
  });
});
