/**
 * The analytics benchmark's load clients, run as a process of their own (`bun
 * bench/analytics/client.ts <json options>`) so that building and sending requests does not share
 * the server's JavaScript thread. Bodies are made ahead: `bodies` distinct batches of events
 * timed around the start, as JSON text split around each eventId, so a request only joins them
 * with fresh UUID v7 ids (every event sent is new). Prints `ready` when it starts sending, then
 * one JSON line: requests sent, non-202 answers (and the first), seconds. Not a benchmark itself (bench/run.ts only runs
 * the files directly in bench/).
 *
 * Modes: `closed` (`clients` loops posting as fast as answers come back, for `seconds`) and
 * `open` (`rate` events/s in batches, at most 16 requests in flight, for `seconds`).
 */
import { randomUUIDv7 } from "bun";
import { batchOf } from "./events.ts";

interface Options {
  url: string;
  key: string;
  mode: "closed" | "open";
  seconds: number;
  batch: number;
  clients?: number;
  rate?: number;
  seed?: number;
}

const opts = JSON.parse(process.argv[2]!) as Options;
const SPLIT = "\u0000id\u0000";

// Each template is a body with a marker where every event's id goes.
const templates = Array.from({ length: 64 }, (_, i) =>
  JSON.stringify({ events: batchOf(opts.batch, (opts.seed ?? 0) + i).map((e) => ({ eventId: SPLIT, ...e })) }).split(JSON.stringify(SPLIT)),
);
const bodyOf = (k: number) => {
  const parts = templates[k % templates.length]!;
  let s = parts[0]!;
  for (let i = 1; i < parts.length; i++) s += `"${randomUUIDv7()}"${parts[i]}`;
  return s;
};

let sent = 0;
let failed = 0;
let firstError = "";
const post = async (k: number) => {
  const res = await fetch(opts.url, { method: "POST", headers: { "content-type": "application/json", "x-api-key": opts.key }, body: bodyOf(k) });
  sent++;
  if (res.status !== 202) {
    failed++;
    if (!firstError) firstError = `${res.status} ${(await res.text()).slice(0, 300)}`;
  } else await res.arrayBuffer();
};

process.stdout.write("ready\n");
const started = performance.now();
const deadline = started + opts.seconds * 1000;
let k = 0;
if (opts.mode === "closed") {
  await Promise.all(
    Array.from({ length: opts.clients ?? 4 }, async () => {
      while (performance.now() < deadline) await post(k++);
    }),
  );
} else {
  const perSecond = (opts.rate ?? 20_000) / opts.batch;
  const inflight = new Set<Promise<void>>();
  while (performance.now() < deadline) {
    const due = started + (k / perSecond) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    if (inflight.size >= 16) await Promise.race(inflight);
    const p = post(k++).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
}
console.log(JSON.stringify({ sent, failed, firstError, seconds: (performance.now() - started) / 1000 }));
