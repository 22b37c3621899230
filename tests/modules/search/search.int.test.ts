import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { indexSubscription } from "../../../modules/search/projection.ts";
import { rawSql } from "../../../src/platform.ts";
import { eventually } from "../../support/eventually.ts";
import { expectProblem, fieldPaths } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "50" });
});
afterAll(() => s.close());

type PostHit = { id: string; content: string; tags: string[]; author: { username: string } | null };
type UserHit = { id: string; username: string; displayName: string };
type SearchPage<T> = { items: T[]; nextCursor: string | null };

const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const post = async (u: QuickUser, content: string, tags: string[] = []) => {
  const res = await as(u, "/posts", { method: "POST", json: { content, tags } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
};
const search = async <T = PostHit>(u: QuickUser, q: string, extra = "") => {
  const res = await as(u, `/search?q=${encodeURIComponent(q)}${extra}`);
  expect(res.status).toBe(200);
  return (await res.json()) as SearchPage<T>;
};
/** walk follows nextCursor to the end, `limit` per page. */
const walk = async <T>(u: QuickUser, q: string, type: string, limit: number) => {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const page: SearchPage<T> = await search<T>(u, q, `&type=${type}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) return items;
  }
  throw new Error("walk did not end");
};
/** indexed waits until the search projection has handled every event appended so far. */
const indexed = () =>
  eventually(async () => {
    const [row] = await s.database.sql<{ behind: number }[]>`
      select count(*)::int as behind from outbox.events e
      where e.type in ('post.created', 'post.deleted', 'user.registered', 'user.updated')
        and not exists (
          select 1 from outbox.subscriptions c
          where c.name = 'search.index' and c.partition = ((hashtext(e.subject)::bigint % c.partitions) + c.partitions) % c.partitions
            and (c.last_transaction_id, c.last_position) >= (e.transaction_id, e.position))`;
    return row!.behind === 0;
  }, 15_000);

describe("search: posts", () => {
  it("finds posts by words (stemmed) and tags, best match first, and forgets deleted ones", async () => {
    const [a, b] = await quickUsers(s, 2, "srch");
    const word = `zq${Date.now().toString(36)}`;
    const inText = await post(a!, `Running with ${word} every morning`);
    const inTag = await post(b!, "nothing about it here", [word]);
    const both = await post(a!, `All about ${word}, and ${word} again`, [word]);
    const other = await post(b!, "cats and dogs run");
    await indexed();
    const hits = (await search(a!, word)).items.map((i) => i.id);
    // Tags weigh more than text: the post with both first, then the tagged one, then the text.
    expect(hits).toEqual([both, inTag, inText]);
    // English stemming: "runs" finds "Running" and "run".
    expect((await search(a!, "runs")).items.map((i) => i.id).sort()).toEqual([inText, other].sort());
    // Web search syntax: a phrase, and an excluded word.
    expect((await search(a!, `"every morning" ${word}`)).items.map((i) => i.id)).toEqual([inText]);
    expect((await search(a!, `${word} -morning`)).items.map((i) => i.id)).toEqual([both, inTag]);
    const [first] = (await search(a!, word)).items;
    expect(first).toMatchObject({ id: both, author: { username: a!.username }, tags: [word] });

    expect((await as(a!, `/posts/${both}`, { method: "DELETE" })).status).toBe(204);
    // Gone at once (the posts read API leaves it out), and from the index once the event lands.
    expect((await search(a!, word)).items.map((i) => i.id)).toEqual([inTag, inText]);
    await indexed();
    const [row] = await s.database.sql<{ deleted: boolean; empty: boolean }[]>`
      select deleted, document = ''::tsvector as empty from search.posts where post_id = ${both}`;
    expect(row).toEqual({ deleted: true, empty: true });
  });

  it("pages a ranked list by (rank, id): no repeats, no gaps, even while new matches arrive", async () => {
    const [a] = await quickUsers(s, 1, "page");
    const word = `pg${Date.now().toString(36)}`;
    const ids: string[] = [];
    // Three rank levels, several posts each (ties broken by id, newest first).
    for (let i = 0; i < 12; i++) ids.push(await post(a!, `${word} ${i % 3 === 0 ? `${word} ${word}` : "plain"} ${i}`, i % 4 === 0 ? [word] : []));
    await indexed();
    const once = (await search(a!, word, "&limit=100")).items.map((i) => i.id);
    expect(once.sort()).toEqual([...ids].sort());
    const expected = (await search(a!, word, "&limit=100")).items.map((i) => i.id);
    // Walk three at a time, with a strong new match posted after the first page.
    const items: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: SearchPage<PostHit> = await search(a!, word, `&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      items.push(...page.items.map((x) => x.id));
      if (i === 0) {
        await post(a!, `${word} ${word} ${word} ${word}`, [word]);
        await indexed();
      }
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(items).toEqual(expected);
  });

  it("rejects a blank, too long or unknown-type query with a 400 problem, and a forged cursor", async () => {
    const [a] = await quickUsers(s, 1, "bad");
    for (const q of ["", "%20%20", "x".repeat(201)]) {
      const p = await expectProblem(await as(a!, `/search?q=${q}`), 400, "VALIDATION.FAILED");
      expect(fieldPaths(p)).toEqual(["query.q"]);
    }
    await expectProblem(await as(a!, "/search"), 400, "VALIDATION.FAILED");
    await expectProblem(await as(a!, "/search?q=x&type=groups"), 400, "VALIDATION.FAILED");
    await expectProblem(await as(a!, "/search?q=x&cursor=zzz"), 400, "PAGINATION.INVALID_CURSOR");
    const forged = Buffer.from(JSON.stringify(["'; drop table x", "00000000-0000-0000-0000-000000000000"])).toString("base64url");
    await expectProblem(await as(a!, `/search?q=x&cursor=${forged}`), 400, "PAGINATION.INVALID_CURSOR");
    await expectProblem(await s.request("/api/v1/search?q=x"), 401, "AUTH.MISSING_TOKEN");
    // Text search syntax the parser might choke on is just text, and stop words alone find nothing.
    for (const q of ["!!!", "a & | b", "'(", "the", "-", '"', "a:*", "x\\", "é".repeat(200)]) {
      expect((await search(a!, q)).items).toBeArray();
      expect((await search(a!, q, "&type=users")).items).toBeArray();
    }
    // Bytes that are not UTF-8, and a NUL (which Postgres text cannot hold): never a 500.
    for (const raw of ["%ED%A0%80", "%FF%FE", "%C3"]) expect([200, 400]).toContain((await as(a!, `/search?q=${raw}`)).status);
    await expectProblem(await as(a!, "/search?q=a%00b"), 400, "VALIDATION.FAILED");
  });
});

describe("search: users", () => {
  it("finds people by username or display-name prefix, any case, exact username first", async () => {
    const stem = `Ped${Date.now().toString(36)}`;
    const exact = await s.register(stem);
    const longer = await s.register(`${stem}_x`);
    const other = await s.register(`zz${Date.now().toString(36)}`);
    expect((await s.request("/api/v1/users/me", { method: "PATCH", token: other.token, json: { displayName: `${stem} Display` } })).status).toBe(200);
    const reader = { ...exact };
    await indexed();
    const found = (await search<UserHit>(reader, stem.toLowerCase(), "&type=users")).items;
    expect(found.map((u) => u.id)).toEqual([exact.id, longer.id, other.id]);
    expect(found[0]).toEqual({ id: exact.id, username: stem, displayName: stem });
    expect(found[2]!.displayName).toBe(`${stem} Display`);
    expect(await walk<UserHit>(reader, stem.toUpperCase(), "users", 1)).toEqual(found);
    // LIKE wildcards are literal.
    expect((await search<UserHit>(reader, "%", "&type=users")).items).toEqual([]);
    expect((await search<UserHit>(reader, `${stem.slice(0, 3)}_`, "&type=users")).items).toEqual([]);
  });
});

describe("search: the index projection", () => {
  it("changes nothing when every event is delivered a second time, in order or after a later one", async () => {
    const [a] = await quickUsers(s, 1, "idem");
    const u = await s.register(`idem_${Date.now().toString(36)}`);
    expect((await s.request("/api/v1/users/me", { method: "PATCH", token: u.token, json: { displayName: "Renamed Later" } })).status).toBe(200);
    const word = `id${Date.now().toString(36)}`;
    await post(a!, `${word} stays`, [word]);
    const gone = await post(a!, `${word} goes`);
    expect((await as(a!, `/posts/${gone}`, { method: "DELETE" })).status).toBe(204);
    await indexed();
    const snapshot = async () => ({
      posts: [...(await s.database.sql`select post_id, document::text, deleted from search.posts where author_id = ${a!.id} order by post_id`)],
      users: [...(await s.database.sql`select user_id, username, display_name from search.users where user_id = ${u.id}`)],
    });
    const before = await snapshot();
    const events = await s.database.sql<{ type: string; data: Record<string, unknown>; sequence: string }[]>`
      select type, data, position::text as sequence from outbox.events
      where type in ('post.created', 'post.deleted', 'user.registered', 'user.updated')
        and (data->>'authorId' = ${a!.id} or data->>'userId' = ${u.id})
      order by position`;
    expect(events.map((e) => e.type).sort()).toEqual(["post.created", "post.created", "post.deleted", "user.registered", "user.updated"]);
    // The whole history again, then the creations and the registration once more after what followed them.
    const again = [...events, ...events.filter((e) => e.type === "post.created" || e.type === "user.registered")];
    for (const e of again) {
      await s.database.db.transaction(async (tx) =>
        indexSubscription.handleBatch!([e] as never, { tx, sql: rawSql(tx), subscription: indexSubscription.name, partition: 0, attempt: 2 }),
      );
    }
    expect(await snapshot()).toEqual(before);
    expect(before.users).toEqual([{ user_id: u.id, username: u.username, display_name: "Renamed Later" }]);
  });
});
