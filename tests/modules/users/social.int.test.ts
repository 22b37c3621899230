import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { expectProblem, fieldPaths } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ ROLES: "api" });
});
afterAll(() => s.close());

const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const followRows = async (where: { follower?: string; followee?: string }) => {
  const [row] = await s.database.sql<{ n: number }[]>`
    select count(*)::int as n from users.follows
    where (${where.follower ?? null}::uuid is null or follower_id = ${where.follower ?? null}::uuid)
      and (${where.followee ?? null}::uuid is null or followee_id = ${where.followee ?? null}::uuid)`;
  return row!.n;
};
const events = (type: string, subject: string) =>
  s.database.sql<{ data: Record<string, unknown> }[]>`select data from outbox.events where type = ${type} and subject = ${subject} order by position`;
const profile = async (viewer: QuickUser, id: string) => {
  const res = await as(viewer, `/users/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
};

describe("profiles", () => {
  it("shows a user's public profile with exact counters and nothing private", async () => {
    const [a, b] = await quickUsers(s, 2, "prof");
    const body = await profile(b!, a!.id);
    expect(body).toEqual({
      id: a!.id,
      username: a!.username,
      displayName: a!.username,
      bio: "",
      followersCount: 0,
      followingCount: 0,
      postsCount: 0,
      createdAt: expect.any(String),
    });
  });

  it("answers 404 for an unknown user, 400 for a malformed id and 401 without a token", async () => {
    const [a] = await quickUsers(s, 1, "prof");
    await expectProblem(await as(a!, `/users/${crypto.randomUUID()}`), 404, "USERS.NOT_FOUND");
    const bad = await expectProblem(await as(a!, "/users/not-a-uuid"), 400, "VALIDATION.FAILED");
    expect(fieldPaths(bad)).toEqual(["param.id"]);
    await expectProblem(await s.request(`/api/v1/users/${a!.id}`), 401, "AUTH.MISSING_TOKEN");
  });

  it("lets a user change their display name and bio, publishing user.updated only for a change", async () => {
    const [a, b] = await quickUsers(s, 2, "edit");
    const res = await as(a!, "/users/me", { method: "PATCH", json: { displayName: "  Ada L.  ", bio: "Counts things." } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: a!.id, displayName: "Ada L.", bio: "Counts things." });
    expect(await profile(b!, a!.id)).toMatchObject({ displayName: "Ada L.", bio: "Counts things." });
    expect((await as(a!, "/users/me", { method: "PATCH", json: { bio: "Counts things." } })).status).toBe(200);
    expect((await as(a!, "/users/me", { method: "PATCH", json: { bio: "" } })).status).toBe(200);
    expect((await events("user.updated", a!.id)).map((e) => e.data)).toEqual([
      { userId: a!.id, username: a!.username, displayName: "Ada L.", bio: "Counts things." },
      { userId: a!.id, username: a!.username, displayName: "Ada L.", bio: "" },
    ]);
  });

  it("refuses an empty edit, unknown fields, a blank display name and an over-long bio", async () => {
    const [a] = await quickUsers(s, 1, "edit");
    for (const [body, paths] of [
      [{}, [""]],
      [{ role: "admin" }, ["", "role"]],
      [{ displayName: "   " }, ["displayName"]],
      [{ bio: "x".repeat(501) }, ["bio"]],
    ] as const) {
      const p = await expectProblem(await as(a!, "/users/me", { method: "PATCH", json: body }), 400, "VALIDATION.FAILED");
      expect(fieldPaths(p)).toEqual([...paths]);
    }
    const [row] = await s.database.sql<{ role: string; display_name: string }[]>`select role, display_name from users.accounts where id = ${a!.id}`;
    expect(row).toEqual({ role: "user", display_name: a!.username });
  });
});

describe("preferences", () => {
  it("are both on by default and change one at a time", async () => {
    const [a] = await quickUsers(s, 1, "pref");
    expect(await (await as(a!, "/users/me/preferences")).json()).toEqual({ emailNotifications: true, postNotifications: true });
    const res = await as(a!, "/users/me/preferences", { method: "PATCH", json: { postNotifications: false } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ emailNotifications: true, postNotifications: false });
    expect(await (await as(a!, "/users/me/preferences")).json()).toEqual({ emailNotifications: true, postNotifications: false });
    expect(s.modules.find((m) => m.name === "users")).toBeDefined();
  });

  it("refuses an empty change, a non-boolean and unknown fields", async () => {
    const [a] = await quickUsers(s, 1, "pref");
    await expectProblem(await as(a!, "/users/me/preferences", { method: "PATCH", json: {} }), 400, "VALIDATION.FAILED");
    const p = await expectProblem(await as(a!, "/users/me/preferences", { method: "PATCH", json: { emailNotifications: "no" } }), 400, "VALIDATION.FAILED");
    expect(fieldPaths(p)).toEqual(["emailNotifications"]);
    await expectProblem(await as(a!, "/users/me/preferences", { method: "PATCH", json: { sms: true } }), 400, "VALIDATION.FAILED");
  });
});

describe("follows", () => {
  it("follows idempotently: two PUTs make one follow, one event and counts of one", async () => {
    const [a, b] = await quickUsers(s, 2, "fol");
    for (let i = 0; i < 2; i++) expect((await as(a!, `/users/${b!.id}/follow`, { method: "PUT" })).status).toBe(204);
    expect(await followRows({ follower: a!.id, followee: b!.id })).toBe(1);
    expect(await profile(a!, a!.id)).toMatchObject({ followingCount: 1, followersCount: 0 });
    expect(await profile(a!, b!.id)).toMatchObject({ followingCount: 0, followersCount: 1 });
    expect((await events("user.followed", a!.id)).map((e) => e.data)).toEqual([{ followerId: a!.id, followeeId: b!.id }]);
  });

  it("unfollows idempotently: two DELETEs end the follow once, with one event", async () => {
    const [a, b] = await quickUsers(s, 2, "unf");
    expect((await as(a!, `/users/${b!.id}/follow`, { method: "PUT" })).status).toBe(204);
    for (let i = 0; i < 2; i++) expect((await as(a!, `/users/${b!.id}/follow`, { method: "DELETE" })).status).toBe(204);
    expect(await followRows({ follower: a!.id })).toBe(0);
    expect(await profile(a!, b!.id)).toMatchObject({ followersCount: 0 });
    expect(await profile(a!, a!.id)).toMatchObject({ followingCount: 0 });
    expect((await events("user.unfollowed", a!.id)).map((e) => e.data)).toEqual([{ followerId: a!.id, followeeId: b!.id }]);
  });

  it("refuses following oneself (422) and an unknown user (404), writing nothing", async () => {
    const [a] = await quickUsers(s, 1, "self");
    for (const method of ["PUT", "DELETE"]) {
      await expectProblem(await as(a!, `/users/${a!.id}/follow`, { method }), 422, "USERS.CANNOT_FOLLOW_SELF");
      await expectProblem(await as(a!, `/users/${crypto.randomUUID()}/follow`, { method }), 404, "USERS.NOT_FOUND");
    }
    await expectProblem(await as(a!, "/users/nobody/follow", { method: "PUT" }), 400, "VALIDATION.FAILED");
    await expectProblem(await s.request(`/api/v1/users/${a!.id}/follow`, { method: "PUT" }), 401, "AUTH.MISSING_TOKEN");
    expect(await followRows({ follower: a!.id })).toBe(0);
    expect(await profile(a!, a!.id)).toMatchObject({ followingCount: 0, followersCount: 0 });
  });

  it("keeps every counter equal to the rows while many clients follow and unfollow at once, mutual follows included", async () => {
    const star = (await quickUsers(s, 1, "star"))[0]!;
    const fans = await quickUsers(s, 24, "fan");
    // Each fan follows, re-follows, unfollows and follows again the star while the star follows
    // each fan back: the mutual pairs lock the same two accounts from both sides.
    const fanRequests = fans.flatMap((f, i) => {
      const path = `/users/${star.id}/follow`;
      const steps = i % 3 === 0 ? ["PUT", "PUT", "DELETE"] : ["PUT", "DELETE", "PUT", "PUT"];
      return [
        (async () => {
          for (const method of steps) expect((await as(f, path, { method })).status).toBe(204);
        })(),
      ];
    });
    const starRequests = fans.map(async (f, i) => {
      expect((await as(star, `/users/${f.id}/follow`, { method: "PUT" })).status).toBe(204);
      if (i % 4 === 0) expect((await as(star, `/users/${f.id}/follow`, { method: "DELETE" })).status).toBe(204);
    });
    await Promise.all([...fanRequests, ...starRequests]);

    const mismatches = await s.database.sql`
      select a.id, a.followers_count, a.following_count,
             (select count(*)::int from users.follows where followee_id = a.id) as followers,
             (select count(*)::int from users.follows where follower_id = a.id) as following
      from users.accounts a
      where a.id = any(${[star.id, ...fans.map((f) => f.id)]}::uuid[])
        and (a.followers_count <> (select count(*) from users.follows where followee_id = a.id)
          or a.following_count <> (select count(*) from users.follows where follower_id = a.id))`;
    expect([...mismatches]).toEqual([]);
    const expectedFollowers = fans.filter((_, i) => i % 3 !== 0).length;
    const expectedFollowing = fans.filter((_, i) => i % 4 !== 0).length;
    expect(await profile(star, star.id)).toMatchObject({ followersCount: expectedFollowers, followingCount: expectedFollowing });
    // One event per change of state, no more.
    const [n] = await s.database.sql<{ followed: number; unfollowed: number }[]>`
      select count(*) filter (where type = 'user.followed')::int as followed, count(*) filter (where type = 'user.unfollowed')::int as unfollowed
      from outbox.events where type in ('user.followed', 'user.unfollowed') and (data->>'followeeId' = ${star.id} or data->>'followerId' = ${star.id})`;
    expect(n!.followed - n!.unfollowed).toBe(expectedFollowers + expectedFollowing);
  });
});

describe("follower and following lists", () => {
  type Entry = { id: string; username: string; displayName: string; followedAt: string };
  const walk = async (viewer: QuickUser, path: string, limit: number, during?: (pageNo: number) => Promise<void>) => {
    const seen: Entry[] = [];
    let cursor: string | null = null;
    for (let pageNo = 0; pageNo < 50; pageNo++) {
      const res = await as(viewer, `${path}?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: Entry[]; nextCursor: string | null };
      expect(body.items.length).toBeLessThanOrEqual(limit);
      seen.push(...body.items);
      await during?.(pageNo);
      cursor = body.nextCursor;
      if (!cursor) return seen;
    }
    throw new Error("walk did not end");
  };

  it("lists followers and followees newest first, each exactly once while new follows arrive", async () => {
    const target = (await quickUsers(s, 1, "popular"))[0]!;
    const fans = await quickUsers(s, 7, "lf");
    for (const f of fans) expect((await as(f, `/users/${target.id}/follow`, { method: "PUT" })).status).toBe(204);
    const late = await quickUsers(s, 3, "late");
    const seen = await walk(target, `/users/${target.id}/followers`, 2, async (pageNo) => {
      if (pageNo < late.length) expect((await as(late[pageNo]!, `/users/${target.id}/follow`, { method: "PUT" })).status).toBe(204);
    });
    // Newest first: the walk sees the seven earlier fans in reverse order, and none twice.
    expect(seen.map((e) => e.id)).toEqual(fans.map((f) => f.id).reverse());
    expect(seen[0]).toEqual({ id: fans[6]!.id, username: fans[6]!.username, displayName: fans[6]!.username, followedAt: expect.any(String) });
    // A fresh walk sees the late ones first.
    const again = await walk(target, `/users/${target.id}/followers`, 100);
    expect(again.map((e) => e.id)).toEqual([...late.map((f) => f.id).reverse(), ...fans.map((f) => f.id).reverse()]);
    const following = await walk(fans[0]!, `/users/${fans[0]!.id}/following`, 1);
    expect(following.map((e) => e.id)).toEqual([target.id]);
  });

  it("answers 404 for an unknown user's lists and 400 for a forged cursor or a bad limit", async () => {
    const [a] = await quickUsers(s, 1, "lst");
    await expectProblem(await as(a!, `/users/${crypto.randomUUID()}/followers`), 404, "USERS.NOT_FOUND");
    await expectProblem(await as(a!, `/users/${a!.id}/following?cursor=bm90LWEtY3Vyc29y`), 400, "PAGINATION.INVALID_CURSOR");
    const forged = Buffer.from(JSON.stringify(["1e400", a!.id])).toString("base64url");
    await expectProblem(await as(a!, `/users/${a!.id}/following?cursor=${forged}`), 400, "PAGINATION.INVALID_CURSOR");
    await expectProblem(await as(a!, `/users/${a!.id}/followers?limit=0`), 400, "VALIDATION.FAILED");
    expect(await (await as(a!, `/users/${a!.id}/followers`)).json()).toEqual({ items: [], nextCursor: null });
  });
});
