import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { Redis } from "ioredis";
import { createMemoryTimelineCache, createRedisTimelineCache, type TimelineCache } from "../../../modules/timelines/index.ts";
import { eventually } from "../../support/eventually.ts";
import { type FaultProxy, startFaultProxy } from "../../support/fault-proxy.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { caughtUp, FAN_OUT_EVENTS, type QuickUser, quickUsers } from "../../support/social.ts";

// Real Redis, always behind a fault proxy: the tests cut the proxy, never the machine's Redis.
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const TTL_SECONDS = 20;

let s: TestServer;
let proxy: FaultProxy;
let redis: Redis;
const seen = new Set<string>();

beforeAll(async () => {
  proxy = startFaultProxy(Number(new URL(REDIS_URL).port || 6379));
  const viaProxy = new URL(REDIS_URL);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  s = await startTestServer({
    WORKER_POLL_MS: "50",
    REDIS_URL: viaProxy.toString(),
    TIMELINE_CACHE_TTL_SECONDS: String(TTL_SECONDS),
    REDIS_CONNECT_TIMEOUT_MS: "300",
    REDIS_COMMAND_TIMEOUT_MS: "200",
  });
});
afterAll(async () => {
  await s?.close();
  proxy?.stop();
  if (seen.size) await redis.del(...[...seen].map((id) => `timeline:${id}`));
  redis?.disconnect();
});

type Page = { items: { id: string; content: string }[]; nextCursor: string | null };
const as = (u: QuickUser, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const people = async (n: number, prefix: string) => {
  const us = await quickUsers(s, n, prefix);
  for (const u of us) seen.add(u.id);
  return us;
};
const read = async (u: QuickUser, query = "") => {
  const res = await as(u, `/timeline${query}`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("application/json");
  return (await res.json()) as Page;
};
const contents = async (u: QuickUser, query = "") => (await read(u, query)).items.map((i) => i.content);
const post = async (u: QuickUser, content: string) => {
  const res = await as(u, "/posts", { method: "POST", json: { content } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
};
const follow = async (a: QuickUser, b: QuickUser, method = "PUT") => expect((await as(a, `/users/${b.id}/follow`, { method })).status).toBe(204);
const settled = () => caughtUp(s, "timelines.fan-out", FAN_OUT_EVENTS);
const cached = (u: QuickUser) => redis.hgetall(`timeline:${u.id}`);

describe("timeline cache in Redis", () => {
  it("keeps the first page per page size with the TTL, and serves it from there", async () => {
    const [reader, author] = await people(2, "rc");
    await follow(reader!, author!);
    await post(author!, "one");
    await settled();
    expect(await contents(reader!)).toEqual(["one"]);
    const entry = await cached(reader!);
    expect(Object.keys(entry).sort()).toEqual(["20", "gen"]);
    expect(JSON.parse(entry["20"]!).items.map((i: { content: string }) => i.content)).toEqual(["one"]);
    const ttl = await redis.pttl(`timeline:${reader!.id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS * 1000);
    // Served from Redis: a page planted there is what the reader gets.
    const planted = { items: [], nextCursor: null, planted: true };
    await redis.hset(`timeline:${reader!.id}`, "20", JSON.stringify(planted));
    expect(await read(reader!)).toEqual(planted as unknown as Page);
    // Another page size is its own entry; later pages are never cached.
    expect(await contents(reader!, "?limit=5")).toEqual(["one"]);
    expect(Object.keys(await cached(reader!)).sort()).toEqual(["20", "5", "gen"]);
    expect((await read(reader!, "?limit=5")).items.map((i) => i.content)).toEqual(["one"]);
  });

  it("is invalidated by fan-out, follow, unfollow and deletion", async () => {
    const [reader, a, b] = await people(3, "ri");
    await follow(reader!, a!);
    const first = await post(a!, "a1");
    await settled();
    expect(await contents(reader!)).toEqual(["a1"]);
    const gen = async () => Number((await cached(reader!)).gen);
    // The invalidation runs just after the batch commits: wait for it, not only for the checkpoint.
    const bumpedTo = (n: number) => eventually(async () => (await gen()) === n);
    const g0 = await gen();

    await post(a!, "a2"); // fan-out
    await settled();
    await bumpedTo(g0 + 1);
    expect(await cached(reader!)).toEqual({ gen: String(g0 + 1) });
    expect(await contents(reader!)).toEqual(["a2", "a1"]);

    await post(b!, "b1");
    await follow(reader!, b!); // the merge on follow
    await settled();
    await bumpedTo(g0 + 2);
    expect(await contents(reader!)).toEqual(["b1", "a2", "a1"]);

    await follow(reader!, b!, "DELETE"); // unfollow
    await settled();
    await bumpedTo(g0 + 3);
    expect(await contents(reader!)).toEqual(["a2", "a1"]);

    expect((await as(a!, `/posts/${first}`, { method: "DELETE" })).status).toBe(204);
    await settled();
    await bumpedTo(g0 + 4);
    expect(await contents(reader!)).toEqual(["a2"]);
  });

  it("does not create entries for followers who are not reading", async () => {
    const [author, idle] = await people(2, "rn");
    await follow(idle!, author!);
    await post(author!, "to an idle follower");
    await settled();
    expect(await redis.exists(`timeline:${idle!.id}`)).toBe(0);
  });

  it("serves timelines from Postgres while Redis refuses, resets or hangs, fast; once back, pays the invalidations it missed", async () => {
    const [reader, author] = await people(2, "rd");
    await follow(reader!, author!);
    await post(author!, "before");
    await settled();
    let latest = "before";
    for (const fault of ["refuse", "reset", "stall"] as const) {
      // A cached page of the timeline as it is now.
      await eventually(async () => (await contents(reader!))[0] === latest && (await cached(reader!))["20"] !== undefined);
      proxy.set(fault);
      // Still ready: a replica without Redis serves (degraded), so it stays in rotation.
      expect((await s.request("/ready")).status).toBe(200);
      // A post while Redis is out of reach: its invalidation cannot be sent now.
      latest = `during ${fault}`;
      await post(author!, latest);
      await settled();
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        expect((await contents(reader!))[0]).toBe(latest);
        // The first request into a hang waits for one command timeout (200 ms); none waits much longer.
        expect(performance.now() - started).toBeLessThan(1000);
      }
      proxy.set("pass");
      // The stale page still in Redis goes as soon as the server reaches it again (well within the
      // 20 s TTL), and the next read caches the page as it is now.
      const cachedFirst = async () => {
        const page = (await cached(reader!))["20"];
        return page ? (JSON.parse(page) as Page).items[0]?.content : undefined;
      };
      expect(await cachedFirst()).not.toBe(latest);
      await eventually(async () => {
        expect((await contents(reader!))[0]).toBe(latest);
        return (await cachedFirst()) === latest;
      });
    }
    expect(await contents(reader!)).toEqual(["during stall", "during reset", "during refuse", "before"]);
  });
});

describe.each([
  ["memory", () => createMemoryTimelineCache({ ttlSeconds: 5 })],
  ["redis", () => createRedisTimelineCache(new Redis(REDIS_URL, { maxRetriesPerRequest: 0 }), { ttlSeconds: 5 })],
] as const)("%s timeline cache", (_kind, make) => {
  const u = () => {
    const id = crypto.randomUUID();
    seen.add(id);
    return id;
  };
  let cache: TimelineCache;
  // Redis answers a hit as the bytes it holds, memory as text: compared as text.
  const lookup = async (id: string, limit: number) => {
    const r = await cache.lookup(id, limit);
    return "hit" in r ? { hit: typeof r.hit === "string" ? r.hit : Buffer.from(r.hit).toString("utf8") } : r;
  };
  beforeAll(async () => {
    cache = make();
    // Connected: a miss carries a generation (a cache that cannot answer misses without one).
    await eventually(async () => {
      const r = await cache.lookup(u(), 1);
      return "miss" in r && r.miss !== null;
    });
  });

  it("never stores a page read before an invalidation (the read raced a fan-out)", async () => {
    const id = u();
    const miss = await lookup(id, 20);
    expect(miss).toEqual({ miss: "0" });
    await cache.invalidate([id]); // a fan-out commits while the page is read from Postgres
    await cache.store(id, 20, (miss as { miss: string }).miss, "stale");
    const again = await lookup(id, 20);
    expect(again).toEqual({ miss: "1" });
    await cache.store(id, 20, "1", "fresh");
    expect(await lookup(id, 20)).toEqual({ hit: "fresh" });
  });

  it("invalidates only the readers it names, and those without an entry cost nothing", async () => {
    const [x, y, z] = [u(), u(), u()];
    for (const id of [x, y]) await cache.store(id, 20, ((await lookup(id, 20)) as { miss: string }).miss, `page ${id}`);
    await cache.invalidate([x, z]);
    expect(await lookup(x, 20)).toEqual({ miss: "1" });
    expect(await lookup(y, 20)).toEqual({ hit: `page ${y}` });
    if (_kind === "redis") expect(await redis.exists(`timeline:${z}`)).toBe(0);
  });
});

describe("process copies of Redis pages (client-side caching)", () => {
  const clients: Redis[] = [];
  const caches: TimelineCache[] = [];
  let copyProxy: FaultProxy;
  const client = (url: string) => {
    const c = new Redis(url, { maxRetriesPerRequest: 1 });
    clients.push(c);
    return c;
  };
  const names = new Map<TimelineCache, string>();
  const make = (url: string, localEntries = 100) => {
    const name = `tlcopies-${crypto.randomUUID().slice(0, 8)}`;
    const c = new Redis(url, {
      connectionName: name,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      commandTimeout: 200,
      connectTimeout: 300,
      enableAutoPipelining: true,
    });
    c.on("error", () => {});
    clients.push(c);
    // A short cool-off: a read through a stalled proxy times out, and the test should not wait long after.
    const cache = createRedisTimelineCache(c, { ttlSeconds: 10, localEntries, coolOffMs: 100 });
    caches.push(cache);
    names.set(cache, name);
    return cache;
  };
  const text = (r: Awaited<ReturnType<TimelineCache["lookup"]>>) =>
    "hit" in r ? { hit: typeof r.hit === "string" ? r.hit : Buffer.from(r.hit).toString("utf8") } : r;
  const u = () => {
    const id = crypto.randomUUID();
    seen.add(id);
    return id;
  };
  /** cached puts `body` in Redis as `id`'s page through `cache` and reads it back once (which keeps a copy). */
  const cachedThrough = async (cache: TimelineCache, id: string, body: string) => {
    const miss = await cache.lookup(id, 20);
    expect("miss" in miss && miss.miss !== null).toBe(true);
    await cache.store(id, 20, (miss as { miss: string }).miss, body);
    expect(text(await cache.lookup(id, 20))).toEqual({ hit: body });
  };
  const viaProxy = () => {
    const url = new URL(REDIS_URL);
    url.hostname = "127.0.0.1";
    url.port = String(copyProxy.port);
    return url.toString();
  };
  /** ready waits until the cache answers from Redis and its tracking connection (same client name) tracks `timeline:` keys. */
  const ready = async (cache: TimelineCache) => {
    await eventually(async () => {
      const r = await cache.lookup(u(), 1);
      return "miss" in r && r.miss !== null;
    });
    const raw = client(REDIS_URL);
    await eventually(async () => {
      const list = (await raw.call("CLIENT", "LIST")) as string;
      return list.split("\n").some((l) => l.includes(`name=${names.get(cache)} `) && / flags=\w*t\w* /.test(l) && l.includes(" sub=1 "));
    });
    // Its first PING answered (copies are served only then).
    await Bun.sleep(50);
  };

  beforeAll(() => {
    copyProxy = startFaultProxy(Number(new URL(REDIS_URL).port || 6379));
  });
  afterAll(() => {
    for (const c of caches) c.close?.();
    for (const c of clients) c.disconnect();
    copyProxy?.stop();
  });

  it("serves a page it has read from Redis without asking Redis again, while the tracking connection is confirmed", async () => {
    const cache = make(viaProxy());
    await ready(cache);
    const id = u();
    await cachedThrough(cache, id, "kept here");
    copyProxy.set("stall");
    try {
      // Redis hangs: a request to it would wait the 200 ms timeout and miss. The copy answers at once.
      const started = performance.now();
      expect(text(await cache.lookup(id, 20))).toEqual({ hit: "kept here" });
      expect(performance.now() - started).toBeLessThan(50);
      // The tracking connection hangs too, so no PING is answered: after a second the copy is not trusted.
      await Bun.sleep(1300);
      expect(await cache.lookup(id, 20)).toEqual({ miss: null });
    } finally {
      copyProxy.set("pass");
    }
  });

  it("drops its copy when another client or process changes the page in Redis", async () => {
    const here = make(REDIS_URL);
    const elsewhere = make(REDIS_URL, 0); // another replica or the workers' process
    const raw = client(REDIS_URL);
    await ready(here);
    const id = u();
    await cachedThrough(here, id, "v1");
    // An invalidation by another process (a fan-out in the workers).
    await elsewhere.invalidate([id]);
    await eventually(async () => "miss" in (await here.lookup(id, 20)));
    const miss = (await here.lookup(id, 20)) as { miss: string };
    await here.store(id, 20, miss.miss, "v2");
    expect(text(await here.lookup(id, 20))).toEqual({ hit: "v2" });
    // Any write to the entry by any client: the copy goes and the next read is Redis's page.
    await raw.hset(`timeline:${id}`, "20", "planted");
    await eventually(async () => (text(await here.lookup(id, 20)) as { hit?: string }).hit === "planted");
    // And so does the entry's expiry.
    await raw.pexpire(`timeline:${id}`, 50);
    await eventually(async () => "miss" in (await here.lookup(id, 20)));
  });

  it("never serves a copy after its own invalidate resolved", async () => {
    const cache = make(REDIS_URL);
    await ready(cache);
    for (let i = 0; i < 20; i++) {
      const id = u();
      await cachedThrough(cache, id, `page ${i}`);
      // A read under way while the invalidation goes out keeps no copy of what it read.
      const during = cache.lookup(id, 20);
      await cache.invalidate([id]);
      await during;
      expect("miss" in (await cache.lookup(id, 20))).toBe(true);
    }
  });

  it("drops every copy when Redis goes away, falls back to misses, and copies again once it is back", async () => {
    const cache = make(viaProxy());
    for (const fault of ["reset", "refuse"] as const) {
      await ready(cache);
      const id = u();
      await cachedThrough(cache, id, `before ${fault}`);
      copyProxy.set(fault);
      // The tracking connection is cut: its copies go, and with Redis unreachable a read is a miss (served from Postgres).
      await eventually(async () => Object.hasOwn(await cache.lookup(id, 20), "miss"));
      expect(await cache.lookup(id, 20)).toEqual({ miss: null });
      // Meanwhile another client changes the page: once back, the process must not serve its old copy.
      await client(REDIS_URL).hset(`timeline:${id}`, "20", `after ${fault}`);
      copyProxy.set("pass");
      await eventually(async () => (text(await cache.lookup(id, 20)) as { hit?: string }).hit === `after ${fault}`);
    }
  });
});
