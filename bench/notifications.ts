/**
 * Notifications benchmark: one post by an author with FOLLOWERS followers (default 10,000, all
 * with post notifications on and email on) becomes a `new_post` notification (and an email
 * request) for every one of them. Measured from the POST's answer: when the first follower's
 * live stream (SSE over real HTTP) gets it, and when the last of the notifications is stored.
 * Reference in the same run: a raw `unnest` insert of as many rows into a copy of the table.
 * A few posts, the median reported; bounded by BENCH_SECONDS-independent sizes (under a minute).
 *
 * `bun bench/notifications.ts` (or `BENCH_ONLY=notifications bun run bench`); its one phase is
 * `notify`, so a BENCH_ONLY naming only other benchmarks' phases skips it.
 */
import { randomUUIDv7 } from "bun";
import pino from "pino";
import { loadConfig } from "../src/config.ts";
import { createJwtAuth } from "../src/http/auth.ts";
import { createServer } from "../src/server.ts";
import {
  createBenchDatabase,
  dropBenchDatabases,
  figure,
  formatTable,
  log,
  percentile,
  runMeta,
  selectedPhases,
  serverEnv,
  waitUntil,
  writeResults,
} from "./support.ts";

if (selectedPhases("notifications", ["notify"]).length === 0) {
  log("notifications benchmark: no phase selected by BENCH_ONLY; skipped");
  process.exit(0);
}

const FOLLOWERS = Number(process.env.BENCH_NOTIFY_FOLLOWERS ?? 10_000);
const POSTS = Number(process.env.BENCH_NOTIFY_POSTS ?? 5);

const db = await createBenchDatabase({ suffix: "notify" });
let stop: (() => Promise<void>) | undefined;
try {
  const config = loadConfig(
    serverEnv(db.url, {
      // What is measured is a post that notifies every follower: an author above the threshold notifies no one.
      CELEBRITY_FOLLOWER_THRESHOLD: String(Math.max(10_000, FOLLOWERS)),
    }),
  );
  const server = await createServer(config, { log: pino({ level: "silent" }) });
  stop = () => server.stop();
  const base = `http://127.0.0.1:${server.listen()}/api/v1`;
  const sql = server.database.sql;

  log(`making ${FOLLOWERS} followers`);
  const author = randomUUIDv7();
  const ids = Array.from({ length: FOLLOWERS }, () => randomUUIDv7());
  await sql`insert into users.accounts (id, username, email, display_name, password_hash) values (${author}, 'bench_author', 'bench_author@example.com', 'Author', 'x')`;
  await sql`
    insert into users.accounts (id, username, email, display_name, password_hash)
    select id, 'f_' || replace(id::text, '-', ''), replace(id::text, '-', '') || '@example.com', 'F', 'x' from unnest(${ids}::uuid[]) id`;
  await sql`insert into users.follows (follower_id, followee_id) select id, ${author} from unnest(${ids}::uuid[]) id`;
  await sql`update users.accounts set followers_count = ${FOLLOWERS} where id = ${author}`;
  // Only signs (new accounts are at token version 0); the server's verifier checks the accounts.
  const auth = createJwtAuth(server.config.JWT_SECRET, config.JWT_TTL_SECONDS, { accounts: async () => undefined });
  const authorToken = (await auth.issue({ id: author, role: "user", username: "bench_author", tokenVersion: 0 })).accessToken;
  const watcher = ids[ids.length - 1]!;
  const watcherToken = (await auth.issue({ id: watcher, role: "user", username: "f", tokenVersion: 0 })).accessToken;

  // One follower watches live.
  const res = await fetch(`${base}/notifications/stream`, { headers: { authorization: `Bearer ${watcherToken}` } });
  const reader = res.body!.getReader();
  let received = 0;
  let lastAt = 0;
  void (async () => {
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const text = decoder.decode(value);
      const n = (text.match(/event: notification/g) ?? []).length;
      if (n) {
        received += n;
        lastAt = performance.now();
      }
    }
  })();
  await Bun.sleep(200);

  const streamMs: number[] = [];
  const allMs: number[] = [];
  for (let i = 0; i < POSTS; i++) {
    const before = received;
    const t0 = performance.now();
    const posted = await fetch(`${base}/posts`, {
      method: "POST",
      headers: { authorization: `Bearer ${authorToken}`, "content-type": "application/json" },
      body: JSON.stringify({ content: `bench post ${i}` }),
    });
    if (posted.status !== 201) throw new Error(`post failed: ${posted.status} ${await posted.text()}`);
    const { id: postId } = (await posted.json()) as { id: string };
    const t1 = performance.now();
    if (!(await waitUntil(() => received > before, 20_000, 2))) throw new Error("the stream got nothing");
    streamMs.push(lastAt - t1);
    const stored = await waitUntil(
      async () => {
        const [r] = await sql<
          { n: number }[]
        >`select count(*)::int as n from notifications.notifications where cause_event_id = (select id from outbox.events where type = 'post.created' and subject = ${postId})`;
        return r!.n === FOLLOWERS;
      },
      30_000,
      5,
    );
    if (!stored) throw new Error("not every follower was notified");
    allMs.push(performance.now() - t1);
    log(`post ${i}: stream ${streamMs.at(-1)!.toFixed(0)} ms, all ${FOLLOWERS} stored ${allMs.at(-1)!.toFixed(0)} ms (request ${(t1 - t0).toFixed(0)} ms)`);
  }
  const [emails] = await sql<{ n: number }[]>`select count(*)::int as n from outbox.events where type = 'notification.email_requested'`;
  if (emails!.n !== FOLLOWERS * POSTS) throw new Error(`expected ${FOLLOWERS * POSTS} email requests, got ${emails!.n}`);

  // Reference: the same number of rows inserted raw, one unnest statement, into a copy of the table.
  await sql`create table public.raw_notifications (like notifications.notifications including all)`;
  const rawMs: number[] = [];
  for (let i = 0; i < POSTS; i++) {
    const cause = randomUUIDv7();
    const t = performance.now();
    await sql`
      insert into public.raw_notifications (id, recipient_id, seq, type, title, message, data, cause_event_id)
      select gen_random_uuid(), r, 1000 + ${i}, 'new_post', 'New post', 'bench_author shared a new post', '{"postId": "x"}'::jsonb, ${cause}
      from unnest(${ids}::uuid[]) r`;
    rawMs.push(performance.now() - t);
  }
  reader.cancel().catch(() => {});

  const median = (v: number[]) => percentile(v, 50);
  const figures = [
    figure({
      name: `post to ${FOLLOWERS} followers: first follower's SSE stream gets it`,
      value: median(streamMs),
      unit: "ms",
      reference: "-",
      referenceValue: 0,
      target: {},
      note: "from the POST's 201 to the event on a live stream (real HTTP); median of the posts",
    }),
    figure({
      name: `post to ${FOLLOWERS} followers: all notifications stored (+ email requests)`,
      value: median(allMs),
      unit: "ms",
      reference: `raw unnest insert of ${FOLLOWERS} rows`,
      referenceValue: median(rawMs),
      target: {},
      note: "from the POST's 201 until the last notification is committed, through the outbox, the users read API, the inbox seqs and the events",
    }),
  ];
  console.log(formatTable(figures));
  writeResults(await runMeta("notifications", sql), figures, { followers: FOLLOWERS, posts: POSTS, streamMs, allMs, rawMs });
} finally {
  await stop?.().catch(() => {});
  await dropBenchDatabases();
}
process.exit(0);
