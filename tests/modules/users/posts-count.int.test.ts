import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { countPosts } from "../../../modules/users/handlers.ts";
import { rawSql } from "../../../src/platform.ts";
import { eventually } from "../../support/eventually.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

// Workers on: the users module learns of posts from the posts module's events.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "100" });
});
afterAll(() => s.close());

const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const postsCount = async (viewer: QuickUser, id: string) => ((await (await as(viewer, `/users/${id}`)).json()) as { postsCount: number }).postsCount;
const storedCount = async (id: string) => (await s.database.sql<{ n: number }[]>`select posts_count as n from users.accounts where id = ${id}`)[0]!.n;

/** deliver runs the subscription's handler on the event again, in its own transaction, as a redelivery would. */
async function deliver(type: "post.created" | "post.deleted", data: Record<string, unknown>) {
  await s.database.db.transaction(async (tx) =>
    countPosts.handler!({ type, data } as never, { tx, sql: rawSql(tx), subscription: countPosts.name, partition: 0, attempt: 2 }),
  );
}

describe("postsCount on the profile", () => {
  it("follows post.created and post.deleted", async () => {
    const [a, b] = await quickUsers(s, 2, "cnt");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await as(a!, "/posts", { method: "POST", json: { content: `p${i}` } });
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await eventually(async () => expect(await postsCount(b!, a!.id)).toBe(3), 10_000);
    expect((await as(a!, `/posts/${ids[0]}`, { method: "DELETE" })).status).toBe(204);
    await eventually(async () => expect(await postsCount(b!, a!.id)).toBe(2), 10_000);
  });

  it("stays exact when every event is delivered twice, and when a deletion arrives before its creation", async () => {
    const [a] = await quickUsers(s, 1, "twice");
    const live = { postId: crypto.randomUUID(), authorId: a!.id };
    const dead = { postId: crypto.randomUUID(), authorId: a!.id };
    await deliver("post.created", live);
    await deliver("post.created", live);
    expect(await storedCount(a!.id)).toBe(1);
    await deliver("post.created", dead);
    await deliver("post.deleted", dead);
    await deliver("post.deleted", dead);
    await deliver("post.created", dead);
    expect(await storedCount(a!.id)).toBe(1);
    const early = { postId: crypto.randomUUID(), authorId: a!.id };
    await deliver("post.deleted", early);
    await deliver("post.created", early);
    expect(await storedCount(a!.id)).toBe(1);
  });
});
