import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import postgres from "postgres";
import type { NotificationStreams } from "../../../modules/notifications/stream/index.ts";
import { OrderShipped } from "../../../modules/orders/events.ts";
import { eventually } from "../../support/eventually.ts";
import { expectProblem } from "../../support/http.ts";
import { freePort, killAll, spawnApp } from "../../support/process.ts";
import { ADMIN, startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";
import { openSse, type SseClient } from "../../support/sse.ts";

// Real HTTP: the app listens on a port and streams are read with fetch, as a browser would.
let s: TestServer;
let base: string;
const open: SseClient[] = [];
beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "100", NOTIFICATIONS_HEARTBEAT_MS: "300", NOTIFICATIONS_MAX_STREAMS_PER_USER: "2" });
  base = `http://127.0.0.1:${s.listen()}/api/v1`;
});
afterAll(async () => {
  for (const c of open) c.close();
  await s.close();
});

const streams = (server: TestServer) => (server.modules.find((m) => m.name === "notifications") as unknown as { streams: NotificationStreams }).streams;
const stream = async (u: QuickUser, lastEventId?: string, url = base) => {
  const c = await openSse(`${url}/notifications/stream`, u.token, lastEventId);
  open.push(c);
  // The server says "connected" once the stream is registered.
  await eventually(() => c.comments.includes("connected"), 3000);
  return c;
};
const http = (u: QuickUser, path: string, method: string, url = base) => fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${u.token}` } });
const follow = async (a: QuickUser, b: QuickUser, url = base) => expect((await http(a, `/users/${b.id}/follow`, "PUT", url)).status).toBe(204);
type Note = { id: string; type: string; data: Record<string, unknown>; read: boolean };
const note = (e: { data: string }) => JSON.parse(e.data) as Note;

describe("the live notification stream", () => {
  it("delivers a new_follower within one second of a follow over real HTTP", async () => {
    const [star, fan] = await quickUsers(s, 2, "sse");
    const c = await stream(star!);
    expect(c.status).toBe(200);
    expect(c.headers.get("content-type")).toStartWith("text/event-stream");
    const started = performance.now();
    await follow(fan!, star!);
    const e = await c.next((x) => x.event === "notification", 1000);
    expect(e.at - started).toBeLessThan(1000);
    expect(note(e)).toMatchObject({ type: "new_follower", read: false, data: { followerId: fan!.id } });
    expect(Number(e.id)).toBeGreaterThan(0);
    // Heartbeats keep it open (every 300 ms here).
    await eventually(() => c.comments.some((x) => x.startsWith("heartbeat")), 3000);
    // The stream is the caller's only: the fan's own stream gets nothing of the star's.
    const fans = await stream(fan!);
    const [other] = await quickUsers(s, 1, "sse2");
    await follow(other!, star!);
    await c.next((x) => x.event === "notification" && note(x).data.followerId === other!.id, 2000);
    await eventually(() => fans.comments.some((x) => x.startsWith("heartbeat")), 3000);
    expect(fans.events).toEqual([]);
  });

  it("replays what was missed after Last-Event-ID, in order, and nothing older; without it only what is new", async () => {
    const [me, a, b, c, d] = await quickUsers(s, 5, "resume");
    const first = await stream(me!);
    await follow(a!, me!);
    const seen = await first.next((x) => x.event === "notification");
    first.close();
    await first.ended;
    // Missed while disconnected.
    await follow(b!, me!);
    await follow(c!, me!);
    await eventually(async () => {
      const [row] = await s.database.sql<{ n: number }[]>`select count(*)::int as n from notifications.notifications where recipient_id = ${me!.id}`;
      return row!.n === 3;
    });
    const resumed = await stream(me!, seen.id);
    const replayed = [await resumed.next(() => true, 3000, 0), await resumed.next(() => true, 3000, 1)];
    expect(replayed.map((e) => note(e).data.followerId).sort()).toEqual([b!.id, c!.id].sort());
    expect(replayed.map((e) => Number(e.id))).toEqual([Number(seen.id) + 1, Number(seen.id) + 2]);
    // And it goes on live.
    await follow(d!, me!);
    expect(note(await resumed.next(() => true, 2000, 2)).data.followerId).toBe(d!.id);
    // A fresh stream without Last-Event-ID starts from now: it replays none of the four.
    resumed.close();
    const fresh = await stream(me!);
    await eventually(() => fresh.comments.some((x) => x.startsWith("heartbeat")), 3000);
    expect(fresh.events).toEqual([]);
    // Last-Event-ID 0 replays everything.
    fresh.close();
    const everything = await stream(me!, "0");
    await everything.next(() => true, 3000, 3);
    expect(everything.events.map((e) => Number(e.id))).toEqual([1, 2, 3, 4]);
    everything.close();
  });

  it("replays a long backlog completely and in order, at the client's pace", async () => {
    const [me] = await quickUsers(s, 1, "backlog");
    const n = 2_500;
    await s.database.sql`
      insert into notifications.notifications (id, recipient_id, seq, type, title, message, data, cause_event_id)
      select gen_random_uuid(), ${me!.id}, i, 'new_follower', 'New follower', 'someone started following you', '{}'::jsonb, gen_random_uuid()
      from generate_series(1, ${n}) i`;
    await s.database.sql`insert into notifications.inboxes (recipient_id, last_seq) values (${me!.id}, ${n})`;
    const c = await stream(me!, "0");
    await c.next(() => true, 20_000, n - 1);
    expect(c.events.map((e) => Number(e.id))).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(streams(s).size(me!.id)).toBe(1);
    c.close();
  });

  it("paces a replay by the client: a slow reader is not dropped for the backlog the server read ahead", async () => {
    const [me] = await quickUsers(s, 1, "slow");
    const n = 1_500;
    await s.database.sql`
      insert into notifications.notifications (id, recipient_id, seq, type, title, message, data, cause_event_id)
      select gen_random_uuid(), ${me!.id}, i, 'new_follower', 'New follower', 'someone started following you', '{}'::jsonb, gen_random_uuid()
      from generate_series(1, ${n}) i`;
    const got: number[] = [];
    let closed = false;
    // A client that takes a while over every write, straight on the process's streams.
    const handle = await streams(s).open(me!.id, 0, {
      send: async (seq) => {
        if (got.length % 100 === 0) await Bun.sleep(20);
        got.push(seq);
      },
      comment: async () => {},
      close: () => {
        closed = true;
      },
    });
    await eventually(() => got.length === n || closed, 20_000);
    expect(closed).toBe(false);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    handle.close();
  });

  it("refuses a bad Last-Event-ID and anyone without a token", async () => {
    const [me] = await quickUsers(s, 1, "bad");
    const bad = await fetch(`${base}/notifications/stream`, { headers: { authorization: `Bearer ${me!.token}`, "last-event-id": "abc" } });
    await expectProblem(bad, 400, "VALIDATION.FAILED");
    await expectProblem(await fetch(`${base}/notifications/stream`), 401, "AUTH.MISSING_TOKEN");
    await expectProblem(await fetch(`${base}/notifications/stream`, { headers: { authorization: "Bearer forged.token.here" } }), 401, "AUTH.TOKEN_INVALID");
  });

  it("keeps at most two streams per user, closing the oldest, and forgets a stream once its client goes", async () => {
    const [me, fan] = await quickUsers(s, 2, "bound");
    const hub = streams(s);
    const one = await stream(me!);
    const two = await stream(me!);
    expect(hub.size(me!.id)).toBe(2);
    const three = await stream(me!);
    await one.ended; // the server ended the oldest
    expect(hub.size(me!.id)).toBe(2);
    await follow(fan!, me!);
    await two.next(() => true, 2000);
    await three.next(() => true, 2000);
    expect(one.events).toEqual([]);
    two.close();
    three.close();
    await eventually(() => hub.size(me!.id) === 0, 3000);
  });

  it("ends a stream once its caller's token stops working (the account disabled), and only that stream", async () => {
    const [gone, stays] = await quickUsers(s, 2, "revoked");
    const c = await stream(gone!);
    const other = await stream(stays!);
    let otherEnded = false;
    void other.ended.then(() => {
      otherEnded = true;
    });
    const admin = await s.adminToken();
    const res = await fetch(`${base}/admin/users/${gone!.id}/disable`, { method: "POST", headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBeLessThan(300);
    // Checked again every heartbeat period (300 ms here).
    const outcome = await Promise.race([c.ended.then(() => "ended" as const), Bun.sleep(3000).then(() => "still open" as const)]);
    expect(outcome).toBe("ended");
    const beats = other.comments.filter((x) => x.startsWith("heartbeat")).length;
    await eventually(() => other.comments.filter((x) => x.startsWith("heartbeat")).length >= beats + 2, 3000);
    expect(otherEnded).toBe(false);
  });

  it("gets a notification another connection wrote, also after the listen connection was cut", async () => {
    const [me] = await quickUsers(s, 1, "cut");
    const c = await stream(me!);
    // Written by a connection of its own, as another process would: the event, handled by the worker.
    const other = postgres(s.tdb.url, { max: 1, onnotice: () => {} });
    try {
      // Cut the listen connection (the one that ran LISTEN); postgres.js reconnects and listens again.
      const cut = await other<{ pid: number }[]>`
        select pg_terminate_backend(pid) as pid from pg_stat_activity where datname = current_database() and query ilike 'listen%'`;
      expect(cut.length).toBeGreaterThan(0);
      const orderId = randomUUIDv7();
      await s.database.db.transaction((tx) =>
        s.outbox.appender.append(tx, [OrderShipped.with({ orderId, customerId: me!.id, trackingNumber: "T-1", carrier: "UPS" }, { subject: orderId })]),
      );
      const e = await c.next(() => true, 5000);
      expect(note(e)).toMatchObject({ type: "order_shipped", data: { orderId, trackingNumber: "T-1" } });
    } finally {
      await other.end();
    }
  });
});

describe("a listen connection that cannot reconnect for a while", () => {
  it("listens again once Postgres takes connections again, and the stream goes on", async () => {
    const srv = await startTestServer({ NOTIFICATIONS_HEARTBEAT_MS: "200" });
    const other = postgres(srv.tdb.url, { max: 1, onnotice: () => {} });
    // ALTER DATABASE ... allow_connections is refused from inside the database itself.
    const admin = postgres(process.env.TEST_PG_BASE!, { max: 1, onnotice: () => {} });
    try {
      const url = `http://127.0.0.1:${srv.listen()}/api/v1`;
      const [me] = await quickUsers(srv, 1, "watchdog");
      await other`select 1`;
      const c = await stream(me!, undefined, url);
      const listening = async () =>
        (await other`select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen "notifications"%' and pid <> pg_backend_pid()`)
          .length > 0;
      // Refuse new connections, then cut the listen connection: it cannot listen again yet.
      await admin.unsafe(`alter database "${srv.tdb.name}" with allow_connections false`);
      await other`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'listen%'`;
      await Bun.sleep(500);
      expect(await listening()).toBe(false);
      await admin.unsafe(`alter database "${srv.tdb.name}" with allow_connections true`);
      // postgres.js retries; should it give the channel up, the watchdog (no ping back for three
      // heartbeats) listens anew. Either way the process listens again.
      await eventually(listening, 5000, 50);
      const orderId = randomUUIDv7();
      await srv.database.db.transaction((tx) =>
        srv.outbox.appender.append(tx, [OrderShipped.with({ orderId, customerId: me!.id, trackingNumber: "T-2", carrier: "DHL" }, { subject: orderId })]),
      );
      expect(note(await c.next(() => true, 5000)).data.orderId).toBe(orderId);
      c.close();
    } finally {
      await admin.unsafe(`alter database "${srv.tdb.name}" with allow_connections true`).catch(() => {});
      await admin.end();
      await other.end();
      await srv.close();
    }
  }, 30_000);
});

describe("across processes", () => {
  // An API-only server streams; a separate OS process running only the workers writes the
  // notifications. Nothing but Postgres connects them.
  let api: TestServer;
  let apiBase: string;
  let worker: Awaited<ReturnType<typeof spawnApp>> | undefined;
  beforeAll(async () => {
    api = await startTestServer({ ROLES: "api", NOTIFICATIONS_HEARTBEAT_MS: "300" });
    apiBase = `http://127.0.0.1:${api.listen()}/api/v1`;
    const port = await freePort();
    worker = spawnApp(
      ["bun", "src/main.ts"],
      { DATABASE_URL: api.tdb.url, ROLES: "worker", WORKER_POLL_MS: "100", LOG_LEVEL: "warn", ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
      port,
    );
    await worker.ready("/health", 20_000);
  }, 30_000);
  afterAll(async () => {
    await worker?.stop();
    await killAll();
    await api.close();
  });

  it("streams a notification that another process wrote", async () => {
    const [me, fan] = await quickUsers(api, 2, "xproc");
    const c = await stream(me!, undefined, apiBase);
    // This process runs no workers: the follow's notification can only come from the worker process.
    await follow(fan!, me!, apiBase);
    const e = await c
      .next(() => true, 10_000)
      .catch(async (err) => {
        // What the worker process said and what it stored, to tell a lost wake-up from a worker that did nothing.
        console.error(worker?.output(), await api.database.sql`select type, recipient_id::text, seq from notifications.notifications`);
        throw err;
      });
    expect(note(e)).toMatchObject({ type: "new_follower", data: { followerId: fan!.id } });
    const [row] = await api.database.sql<{ n: number }[]>`
      select count(*)::int as n from outbox.subscription_members where subscription = 'notifications.notify'`;
    expect(row!.n).toBeGreaterThan(0);
  }, 20_000);
});

describe("shutdown", () => {
  it("ends open streams at once instead of waiting out the drain deadline", async () => {
    const srv = await startTestServer({ NOTIFICATIONS_HEARTBEAT_MS: "10000", SHUTDOWN_TIMEOUT_MS: "8000" });
    const url = `http://127.0.0.1:${srv.listen()}/api/v1`;
    const [me] = await quickUsers(srv, 1, "stop");
    const c = await stream(me!, undefined, url);
    const started = performance.now();
    await srv.close();
    await c.ended;
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

describe("quiet streams", () => {
  it("stay open past Bun's 10 s idle timeout when heartbeats are further apart", async () => {
    const srv = await startTestServer({ NOTIFICATIONS_HEARTBEAT_MS: "30000" });
    try {
      const url = `http://127.0.0.1:${srv.listen()}/api/v1`;
      const [me, fan] = await quickUsers(srv, 2, "idle");
      const c = await stream(me!, undefined, url);
      let ended = false;
      void c.ended.then(() => {
        ended = true;
      });
      await Bun.sleep(11_500);
      expect(ended).toBe(false);
      await follow(fan!, me!, url);
      expect(note(await c.next(() => true, 5000)).type).toBe("new_follower");
      c.close();
    } finally {
      await srv.close();
    }
  }, 30_000);
});
