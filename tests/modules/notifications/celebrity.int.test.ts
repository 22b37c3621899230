import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { eventually } from "../../support/eventually.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

// A post by an author with more followers than CELEBRITY_FOLLOWER_THRESHOLD notifies no one (the
// fan-out storm the timelines avoid); its followers still find it in their home timeline.
const THRESHOLD = 2;
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "100", CELEBRITY_FOLLOWER_THRESHOLD: String(THRESHOLD) });
});
afterAll(() => s.close());

type Item = { type: string; data: Record<string, unknown> };
const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const follow = async (a: QuickUser, b: QuickUser) => expect((await as(a, `/users/${b.id}/follow`, { method: "PUT" })).status).toBe(204);
const post = async (u: QuickUser, content: string) => {
  const res = await as(u, "/posts", { method: "POST", json: { content } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
};
const newPosts = async (u: QuickUser) =>
  ((await (await as(u, "/notifications?limit=100")).json()) as { items: Item[] }).items.filter((i) => i.type === "new_post").map((i) => i.data.postId);
const timeline = async (u: QuickUser) => ((await (await as(u, "/timeline")).json()) as { items: { id: string }[] }).items.map((p) => p.id);

describe("new_post notifications and the celebrity threshold", () => {
  it("tell the followers of an author at the threshold, and no follower of an author above it", async () => {
    const [star, regular, f1, f2, f3] = await quickUsers(s, 5, "celeb");
    // The star has THRESHOLD + 1 followers (a celebrity), the regular author exactly THRESHOLD.
    for (const f of [f1!, f2!, f3!]) await follow(f, star!);
    for (const f of [f1!, f2!]) await follow(f, regular!);
    const starPost = await post(star!, "a post for my many followers");
    const regularPost = await post(regular!, "a post for my few followers");
    // The regular author's followers hear of the post; once they have, the star's (published
    // first) has been handled too: the same subscription, in order per partition, is caught up.
    for (const f of [f1!, f2!]) await eventually(async () => (await newPosts(f)).includes(regularPost), 10_000);
    await eventually(async () => {
      const [row] = await s.database.sql<{ behind: number }[]>`
        select count(*)::int as behind from outbox.events e
        join outbox.subscriptions sub on sub.name = 'notifications.notify'
          and sub.partition = ((hashtext(e.subject)::bigint % sub.partitions) + sub.partitions) % sub.partitions
        where e.type = 'post.created' and (sub.last_transaction_id, sub.last_position) < (e.transaction_id, e.position)`;
      return row!.behind === 0;
    }, 10_000);
    for (const f of [f1!, f2!, f3!]) expect(await newPosts(f)).not.toContain(starPost);
    expect(await newPosts(f3!)).toEqual([]);
    // Nobody was told, yet every follower reads the star's post in their timeline.
    for (const f of [f1!, f2!, f3!]) await eventually(async () => (await timeline(f)).includes(starPost), 10_000);
  });
});
