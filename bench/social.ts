/**
 * Social benchmark: the home timeline's write and read paths in the app as it runs in production
 * (`bun src/main.ts`, its own process, Redis when reachable), beside references in the same run:
 *
 *   1. fanout:   one post by an author with 10,000 active followers, from the POST until the post
 *                is in every follower's timeline (target: under 1 s). Followers' timelines already
 *                hold BENCH_SOCIAL_PREFILL entries each, so the 800-entry trim has work to do.
 *   2. timeline: `GET /api/v1/timeline` (a full first page of 20) requests/s, cached (Redis, or
 *                memory without it) and uncached (a second app process with the cache off), beside
 *                `GET /health` of the same app in the same run (target: cached at least half of
 *                /health); with Redis, also a third process without it (cache and rate limit in memory)
 *   3. posts:    `POST /api/v1/posts` requests/s beside pgbench running the same inserts (the post
 *                row and its `post.created` outbox row in one transaction)
 *
 * Run with `BENCH_ONLY=social bun run bench` or `bun bench/social.ts`. Environment:
 *   DATABASE_URL            server to use (loopback only); the run creates bench_<timestamp>_<pid>_social and drops it
 *   REDIS_URL               Redis for the cache and rate limits (default redis://127.0.0.1:6379; loopback only);
 *                           if unreachable the app caches in memory and the figures say so
 *   BENCH_SECONDS           length of a measured phase (default 6)
 *   BENCH_ONLY              comma list of phases: fanout,timeline,posts (bench/run.ts also takes `social`)
 *   BENCH_STRICT=1          exit 2 when a target is missed
 *   BENCH_HTTP_CONNECTIONS  wrk and pgbench connections (default 32)
 *   BENCH_SOCIAL_FOLLOWERS  followers of the fan-out author (default 10000)
 *   BENCH_SOCIAL_PREFILL    entries already in each follower's timeline (default 100)
 *   BENCH_SOCIAL_POSTS      posts timed in the fan-out phase (default 3)
 *   PGBENCH                 pgbench binary (default: pgbench on PATH)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";
import { ensureWrk, runServerBenchmark, type Served, serve, stopServers, type WrkResult, wrk } from "./http/load.ts";
import {
  type BenchDatabase,
  baseUrl,
  combine,
  createBenchDatabase,
  dropBenchDatabases,
  type Figure,
  figure,
  formatTable,
  INFO,
  log,
  nowMs,
  percentile,
  phaseSeconds,
  runMeta,
  selectedPhases,
  writeResults,
} from "./support.ts";

const T = phaseSeconds();
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 32);
const FOLLOWERS = Number(process.env.BENCH_SOCIAL_FOLLOWERS ?? 10_000);
const PREFILL = Number(process.env.BENCH_SOCIAL_PREFILL ?? 100);
const FANOUT_POSTS = Number(process.env.BENCH_SOCIAL_POSTS ?? 3);
const FANOUT_TARGET_MS = 1000;
const PGBENCH = process.env.PGBENCH ?? Bun.which("pgbench") ?? "/usr/lib/postgresql/15/bin/pgbench";
const PHASES = ["fanout", "timeline", "posts"];
const phases = selectedPhases("social", PHASES);
const ROOT = resolve(import.meta.dir, "..");
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const tmp = mkdtempSync(join(tmpdir(), "bench-social-"));

/** reachableRedis is REDIS_URL (or the local default) when it answers PING, else undefined. */
async function reachableRedis(): Promise<string | undefined> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (!LOOPBACK.has(new URL(url).hostname)) throw new Error(`benchmarks only use a local Redis (127.0.0.1); REDIS_URL points at ${new URL(url).hostname}`);
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG" ? url : undefined;
  } catch {
    return undefined;
  } finally {
    probe.disconnect();
  }
}

const randomSecret = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");

type Person = { id: string; token: string };

async function signUp(app: Served, name: string): Promise<Person> {
  const user = { username: `${name}_${process.pid}`, email: `${name}_${process.pid}@example.com`, password: "bench-password-1" };
  const json = { "content-type": "application/json" };
  const reg = await fetch(`${app.url}/api/v1/users`, { method: "POST", headers: json, body: JSON.stringify(user) });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
  const { id } = (await reg.json()) as { id: string };
  const res = await fetch(`${app.url}/api/v1/auth/token`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ login: user.username, password: user.password }),
  });
  return { id, token: ((await res.json()) as { accessToken: string }).accessToken };
}

const bearer = (p: Person) => ({ authorization: `Bearer ${p.token}` });

async function publish(app: Served, who: Person, content: string): Promise<string> {
  const res = await fetch(`${app.url}/api/v1/posts`, {
    method: "POST",
    headers: { ...bearer(who), "content-type": "application/json" },
    body: JSON.stringify({ content }),
  });
  if (res.status !== 201) throw new Error(`post failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** caughtUp waits until the fan-out subscription has handled everything appended so far. */
async function caughtUp(sql: postgres.Sql, timeoutMs = 60_000): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    const [row] = await sql<{ behind: number }[]>`
      select count(*)::int as behind from outbox.events e
      where e.type in ('post.created', 'post.deleted', 'user.followed', 'user.unfollowed')
        and not exists (
          select 1 from outbox.subscriptions c
          where c.name = 'timelines.fan-out' and c.partition = ((hashtext(e.subject)::bigint % c.partitions) + c.partitions) % c.partitions
            and (c.last_transaction_id, c.last_position) >= (e.transaction_id, e.position))`;
    if (row!.behind === 0) return;
    if (nowMs() > deadline) throw new Error("the fan-out did not catch up within 60 s");
    await Bun.sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. fan-out

async function fanOut(app: Served, sql: postgres.Sql, author: Person, reader: Person): Promise<Figure[]> {
  log(`1. fan-out: seeding ${FOLLOWERS} active followers (${PREFILL} timeline entries each)`);
  // The followers are seeded straight into the timelines module's projections (follows, readers,
  // the author's follower count), as the follow events would leave them: what is measured is the
  // fan-out of a post, not 10,000 follows. The reader followed through the API.
  await sql`
    insert into timelines.follows (follower_id, followee_id)
    select gen_random_uuid(), ${author.id}::uuid from generate_series(1, ${FOLLOWERS - 1})`;
  await sql`
    insert into timelines.readers (user_id, last_active_at)
    select follower_id, now() from timelines.follows where followee_id = ${author.id} on conflict (user_id) do nothing`;
  await sql`
    insert into timelines.authors (author_id, followers_count)
    values (${author.id}, (select count(*) from timelines.follows where followee_id = ${author.id}))
    on conflict (author_id) do update set followers_count = excluded.followers_count`;
  if (PREFILL > 0) {
    // Older entries (ids below any new post's), as if each follower had read for a while.
    await sql`
      insert into timelines.entries (user_id, post_id, author_id)
      select f.follower_id, (lpad(to_hex(1000000000000 + g), 12, '0') || '7000' || substr(md5(f.follower_id::text || g), 1, 16))::uuid, gen_random_uuid()
      from timelines.follows f, generate_series(1, ${PREFILL}) g
      where f.followee_id = ${author.id} and f.follower_id <> ${reader.id}`;
  }
  await sql`vacuum analyze timelines.entries`;
  const [counted] = await sql<{ n: number }[]>`select count(*)::int as n from timelines.follows where followee_id = ${author.id}`;
  const n = counted!.n;
  log(`   ${n} followers; warm-up post`);
  await publish(app, author, "warm-up");
  await caughtUp(sql);

  const times: number[] = [];
  for (let i = 0; i < FANOUT_POSTS; i++) {
    const t0 = nowMs();
    const postId = await publish(app, author, `fan-out ${i}`);
    const accepted = nowMs() - t0;
    // Every follower's timeline and the author's own.
    for (;;) {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from timelines.entries where post_id = ${postId}`;
      if (row!.n >= n + 1) break;
      if (nowMs() - t0 > 30_000) throw new Error(`fan-out of ${postId} incomplete after 30 s: ${row!.n} of ${n + 1}`);
      await Bun.sleep(5);
    }
    const ms = nowMs() - t0;
    times.push(ms);
    log(`   post ${i + 1}: POST answered in ${accepted.toFixed(0)} ms, in all ${n + 1} timelines after ${ms.toFixed(0)} ms`);
    await Bun.sleep(200);
  }
  // The reader's timeline shows it too (through the API).
  const page = (await (await fetch(`${app.url}/api/v1/timeline?limit=1`, { headers: bearer(reader) })).json()) as { items: { content: string }[] };
  if (page.items[0]?.content !== `fan-out ${FANOUT_POSTS - 1}`)
    throw new Error(`the reader's timeline does not start with the last post: ${JSON.stringify(page)}`);
  const worst = Math.max(...times);
  return [
    figure({
      name: `fan-out of one post to ${n} followers (${PREFILL} entries each), POST to visible in every timeline, worst of ${times.length}`,
      value: worst,
      unit: "ms",
      reference: "target",
      referenceValue: FANOUT_TARGET_MS,
      target: { valueBelow: FANOUT_TARGET_MS },
      note: `each post: ${times.map((t) => t.toFixed(0)).join(", ")} ms; median ${percentile(times, 50).toFixed(0)} ms`,
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// 2. timeline reads

async function timelineReads(
  bin: string,
  app: Served,
  uncachedApp: Served,
  memoryApp: Served | undefined,
  reader: Person,
  cacheKind: string,
): Promise<Figure[]> {
  const page = (await (await fetch(`${app.url}/api/v1/timeline`, { headers: bearer(reader) })).json()) as { items: unknown[] };
  const same = (await (await fetch(`${uncachedApp.url}/api/v1/timeline`, { headers: bearer(reader) })).json()) as { items: unknown[] };
  if (page.items.length !== 20 || JSON.stringify(page) !== JSON.stringify(same)) throw new Error("the two apps do not answer the same full first page");
  const run = { bin, connections: CONNECTIONS, headers: bearer(reader) };
  const health = { ...run, path: "/health", headers: {} };
  const timeline = { ...run, path: "/api/v1/timeline" };
  log(`2. timeline reads: warm-up, then /health, cached, uncached, uncached, cached, /health, ${T}s per side`);
  for (const [server, r] of [
    [app, health],
    [app, timeline],
    [uncachedApp, timeline],
  ] as const)
    await wrk(server, { ...r, seconds: Math.max(2, T) });
  const half = Math.max(1, Math.round(T / 2));
  const h1 = await wrk(app, { ...health, seconds: half });
  const c1 = await wrk(app, { ...timeline, seconds: half });
  const u1 = await wrk(uncachedApp, { ...timeline, seconds: half });
  const u2 = await wrk(uncachedApp, { ...timeline, seconds: half });
  const c2 = await wrk(app, { ...timeline, seconds: half });
  const h2 = await wrk(app, { ...health, seconds: half });
  const merge = (x: WrkResult, y: WrkResult) => ({ ...combine(x, y), bad: x.bad + y.bad, cpu: x.cpu + y.cpu });
  // The server's CPU time per request: steadier than rates when other work shares the machine.
  const us = (r: { cpu: number; ops: number }) => ((r.cpu / Math.max(1, r.ops)) * 1e6).toFixed(1);
  const [h, c, u] = [merge(h1, h2), merge(c1, c2), merge(u1, u2)];
  const figuresMemory: Figure[] = [];
  if (memoryApp) {
    // The same pair in a process without Redis (cache and rate limit in memory): what the two
    // Redis round trips per request (rate limit, cache) cost.
    log(`   without Redis: /health, cached, cached, /health`);
    await wrk(memoryApp, { ...timeline, seconds: Math.max(2, T) });
    const mh1 = await wrk(memoryApp, { ...health, seconds: half });
    const mc1 = await wrk(memoryApp, { ...timeline, seconds: half });
    const mc2 = await wrk(memoryApp, { ...timeline, seconds: half });
    const mh2 = await wrk(memoryApp, { ...health, seconds: half });
    const [mh, mc] = [merge(mh1, mh2), merge(mc1, mc2)];
    log(`   without Redis: /health ${mh.rate.toFixed(0)} req/s (${us(mh)} us CPU/req), cached ${mc.rate.toFixed(0)} req/s (${us(mc)} us CPU/req)`);
    const f = figure({
      name: `GET /api/v1/timeline cached in memory, no Redis (rate limit in memory too), wrk -t1 -c${CONNECTIONS}`,
      value: mc.rate,
      unit: "req/s",
      reference: "GET /health, same process, same run",
      referenceValue: mh.rate,
      target: { ratioAtLeast: 0.5 },
      note: mc.bad || mh.bad ? `${mc.bad + mh.bad} answers were errors or timeouts` : "a third app process without REDIS_URL, API role only",
    });
    if (mc.bad || mh.bad) f.pass = false;
    figuresMemory.push(f);
  }
  log(
    `   /health ${h.rate.toFixed(0)} req/s (${us(h)} us CPU/req), cached ${c.rate.toFixed(0)} req/s (${us(c)} us CPU/req), uncached ${u.rate.toFixed(0)} req/s (${us(u)} us CPU/req)`,
  );
  const bad = (r: { bad: number }) => (r.bad ? `${r.bad} answers were errors or timeouts` : undefined);
  const figures = [
    figure({
      name: `GET /api/v1/timeline cached (${cacheKind}), first page of 20, wrk -t1 -c${CONNECTIONS}`,
      value: c.rate,
      unit: "req/s",
      reference: "GET /health, same app, same run",
      referenceValue: h.rate,
      target: { ratioAtLeast: 0.5 },
      note: bad(c),
    }),
    figure({
      name: `GET /api/v1/timeline uncached (Postgres), first page of 20, wrk -t1 -c${CONNECTIONS}`,
      value: u.rate,
      unit: "req/s",
      reference: "GET /health, same app, same run",
      referenceValue: h.rate,
      target: {},
      note: bad(u) ?? "a second app process with TIMELINE_CACHE_TTL_SECONDS=0",
    }),
  ];
  for (const [f, r] of [
    [figures[0]!, c],
    [figures[1]!, u],
  ] as const)
    if (r.bad || h.bad) f.pass = false;
  return [...figures, ...figuresMemory];
}

// ---------------------------------------------------------------------------------------------
// 3. posting vs pgbench

// A time-ordered uuid made in SQL (v7-like), as the app's ids are. (No colons in the script but
// casts: pgbench reads `:name` as a variable.)
const SQL_UUID7 = `(lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid`;
const pgbenchScript = (authorId: string) => `\\set n random(1, 1000000000)
BEGIN;
with p as (
  insert into posts.posts (id, author_id, content, media_urls, tags, in_reply_to_id)
  values (${SQL_UUID7}, '${authorId}', 'bench post ' || :n || ' about things', '{}', '{bench}', null)
  returning id, author_id, content, tags, created_at
)
insert into outbox.events (id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version)
select ${SQL_UUID7}, 'posts', 'post.created', p.id::text, now(),
       jsonb_build_object('postId', p.id, 'authorId', p.author_id, 'content', p.content, 'mediaUrls', '[]'::jsonb, 'tags', to_jsonb(p.tags),
                          'inReplyToId', null, 'createdAt', to_jsonb(p.created_at)),
       ${SQL_UUID7}::text, null, null, null, null
from p;
COMMIT;
`;

async function pgbench(db: BenchDatabase, authorId: string, seconds: number): Promise<{ rate: number; ops: number; seconds: number }> {
  const script = join(tmp, "post.sql");
  writeFileSync(script, pgbenchScript(authorId));
  const u = new URL(db.url);
  const args = [PGBENCH, "-h", u.hostname, "-p", u.port || "5432", "-U", decodeURIComponent(u.username || "postgres")];
  args.push("-c", String(CONNECTIONS), "-j", "1", "-T", String(seconds), "-n", "-f", script, "-M", "prepared", db.name);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password || "") } });
  const killer = setTimeout(() => proc.kill(), (seconds + 30) * 1000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  const tps = /tps = ([\d.]+)/.exec(out);
  const processed = /number of transactions actually processed: (\d+)/.exec(out);
  if (code !== 0 || !tps) throw new Error(`pgbench failed (${code}): ${err || out}`);
  return { rate: Number(tps[1]), ops: processed ? Number(processed[1]) : 0, seconds };
}

async function posting(bin: string, app: Served, db: BenchDatabase, poster: Person): Promise<Figure[]> {
  const script = join(tmp, "post.lua");
  writeFileSync(
    script,
    `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"content":"bench post ' .. n .. ' about things","tags":["bench"]}')
end
`,
  );
  const run = { bin, connections: CONNECTIONS, headers: bearer(poster), path: "/api/v1/posts", script };
  log(`3. POST /api/v1/posts vs pgbench (same inserts), ${CONNECTIONS} connections: warm-up, then app, pgbench, pgbench, app`);
  await wrk(app, { ...run, seconds: Math.max(2, T) });
  const half = Math.max(1, Math.round(T / 2));
  const a1 = await wrk(app, { ...run, seconds: half });
  const p1 = await pgbench(db, poster.id, half);
  const p2 = await pgbench(db, poster.id, half);
  const a2 = await wrk(app, { ...run, seconds: half });
  const a = { ...combine(a1, a2), bad: a1.bad + a2.bad };
  const p = combine(p1, p2);
  log(`   app ${a.rate.toFixed(0)} req/s, pgbench ${p.rate.toFixed(0)} tx/s`);
  const f = figure({
    name: `POST /api/v1/posts (201 with the post), wrk -t1 -c${CONNECTIONS}`,
    value: a.rate,
    unit: "req/s",
    reference: `pgbench -c${CONNECTIONS}: the post row + its outbox row per transaction`,
    referenceValue: p.rate,
    target: {},
    note: a.bad
      ? `${a.bad} answers were errors or timeouts`
      : "the app also validates, authenticates, rate-limits, reads the post back for the 201, and its workers project every post (fan-out, search, counts) on the same 2 cores",
  });
  if (a.bad) f.pass = false;
  return [f];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = nowMs();
  const base = baseUrl();
  const bin = ensureWrk();
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  const figures: Figure[] = [];
  let sql: postgres.Sql | undefined;
  try {
    const meta = await runMeta("social", admin);
    const redisUrl = await reachableRedis();
    const cacheKind = redisUrl ? "Redis" : "memory (Redis unreachable)";
    log(`social benchmark on ${meta.pgVersion?.split(",")[0]}, ${meta.cpuCount} CPUs, ${T}s per phase, phases ${phases.join(",")}, cache in ${cacheKind}`);
    const db = await createBenchDatabase({ suffix: "social" });
    sql = postgres(db.url, { max: 2, onnotice: () => {} });
    const appEnv: Record<string, string> = {
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      JWT_SECRET: randomSecret(),
      ADMIN_PASSWORD: randomSecret(),
      METRICS_TOKEN: randomSecret(),
      LOG_LEVEL: "info",
      RATE_LIMIT_MAX: "1000000000",
      // Every request comes from 127.0.0.1: the per-address budget must not turn the run into 429s.
      RATE_LIMIT_IP_MAX: "1000000000",
      WORKER_POLL_MS: "1000",
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    };
    const where = { cwd: ROOT, logDir: tmp };
    const app = await serve("app", [process.execPath, "src/main.ts"], appEnv, "/health", where);
    // The same app with the cache off and no workers: the uncached side of the timeline reads.
    const uncachedApp = await serve(
      "app-uncached",
      [process.execPath, "src/main.ts"],
      { ...appEnv, ROLES: "api", TIMELINE_CACHE_TTL_SECONDS: "0" },
      "/health",
      where,
    );
    // And, when the app uses Redis, one without it (the timeline phase compares both).
    const memoryEnv = Object.fromEntries(Object.entries(appEnv).filter(([k]) => k !== "REDIS_URL"));
    const memoryApp =
      redisUrl && phases.includes("timeline")
        ? await serve("app-memory", [process.execPath, "src/main.ts"], { ...memoryEnv, ROLES: "api" }, "/health", where)
        : undefined;

    const [author, reader, poster] = [await signUp(app, "author"), await signUp(app, "reader"), await signUp(app, "poster")];
    const follow = await fetch(`${app.url}/api/v1/users/${author.id}/follow`, { method: "PUT", headers: bearer(reader) });
    if (follow.status !== 204) throw new Error(`follow failed: ${follow.status}`);
    // A full first page for the reader.
    for (let i = 0; i < 25; i++) await publish(app, author, `post ${i} of the author`);
    await caughtUp(sql);

    if (phases.includes("fanout")) figures.push(...(await fanOut(app, sql, author, reader)));
    if (phases.includes("timeline")) figures.push(...(await timelineReads(bin, app, uncachedApp, memoryApp, reader, cacheKind)));
    if (phases.includes("posts")) figures.push(...(await posting(bin, app, db, poster)));

    console.log(
      `\nsocial benchmark: ${meta.date}, commit ${meta.gitCommit?.slice(0, 12) ?? "?"}${meta.gitDirty ? " (dirty)" : ""}, ${meta.cpuCount} CPUs, ${meta.pgVersion?.split(" on ")[0]}, BENCH_SECONDS=${T}\n`,
    );
    console.log(formatTable(figures));
    const path = writeResults(meta, figures, {
      totalSeconds: Math.round((nowMs() - started) / 100) / 10,
      cache: redisUrl ? "redis" : "memory",
      load: { generator: "wrk 4.x", threads: 1, connections: CONNECTIONS },
      fanOut: { followers: FOLLOWERS, prefill: PREFILL, posts: FANOUT_POSTS },
    });
    const targeted = figures.filter((f) => f.target !== INFO);
    const missed = targeted.filter((f) => !f.pass).length;
    console.log(
      `\n${targeted.length - missed}/${targeted.length} targets met; results in ${path} and bench/results/social-latest.json (${((nowMs() - started) / 1000).toFixed(0)}s)`,
    );
    return missed && process.env.BENCH_STRICT === "1" ? 2 : 0;
  } finally {
    await stopServers();
    await sql?.end({ timeout: 2 });
    await admin.end({ timeout: 2 });
    await dropBenchDatabases();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (phases.length === 0) {
  log(`BENCH_ONLY=${process.env.BENCH_ONLY} names none of this benchmark's phases (${PHASES.join(", ")}); skipped`);
  process.exit(0);
}

runServerBenchmark(main, tmp);
