/**
 * `bun run analytics:generate`: sends a realistic, seeded clickstream to a running server's
 * `POST /api/v1/analytics/events`, for demos and benchmarks. Bounded in time.
 *
 *   ANALYTICS_INGEST_KEY=... bun run analytics:generate -- --url http://127.0.0.1:3000 --rate 2000 --duration 30 --seed 7
 *
 * Options (or env): --url (ANALYTICS_URL, default http://127.0.0.1:3000), --rate events/s
 * (default 1000), --duration seconds (default 30, at most 600), --seed (default 1), --batch
 * events per request (default 500, at most 500), --users (default 1000), --products (default 200).
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: process.env.ANALYTICS_URL ?? "http://127.0.0.1:3000" },
    rate: { type: "string", default: "1000" },
    duration: { type: "string", default: "30" },
    seed: { type: "string", default: "1" },
    batch: { type: "string", default: "500" },
    users: { type: "string", default: "1000" },
    products: { type: "string", default: "200" },
  },
});
const key = process.env.ANALYTICS_INGEST_KEY;
if (!key) {
  console.error("set ANALYTICS_INGEST_KEY to the server's ingestion key");
  process.exit(2);
}
const num = (name: string, v: string | undefined, min: number, max: number) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name} must be a number from ${min} to ${max}`);
    process.exit(2);
  }
  return n;
};
const rate = num("rate", values.rate, 1, 1_000_000);
const duration = num("duration", values.duration, 1, 600);
const batchSize = Math.floor(num("batch", values.batch, 1, 500));
const users = Math.floor(num("users", values.users, 1, 10_000_000));
const products = Math.floor(num("products", values.products, 1, 1_000_000));
let state = Math.floor(num("seed", values.seed, 0, 2 ** 32)) >>> 0;
const endpoint = `${values.url!.replace(/\/$/, "")}/api/v1/analytics/events`;

/** rnd is mulberry32: the same seed sends the same stream (times aside). */
function rnd(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
const CATEGORIES = ["books", "electronics", "home", "toys", "garden", "sports"];
const COUNTRIES = [
  ["US", "CA"],
  ["US", "NY"],
  ["FR", "IDF"],
  ["DE", "BE"],
  ["JP", "13"],
  ["BR", "SP"],
] as const;
const DEVICES = ["mobile", "desktop", "tablet", "iphone", "android"];

function event(): Record<string, unknown> {
  // Skewed toward a few busy users and popular products, as real traffic is.
  const user = Math.floor(users * rnd() ** 2);
  const x = rnd();
  const eventType = x < 0.55 ? "page_view" : x < 0.75 ? "add_to_cart" : x < 0.88 ? "search" : "purchase";
  const e: Record<string, unknown> = {
    userId: `user-${user}`,
    sessionId: `user-${user}-${Math.floor(Date.now() / 1800_000)}`,
    eventType,
    deviceType: pick(DEVICES),
    // Clients' clocks and networks: up to 3 s behind.
    clientTime: new Date(Date.now() - Math.floor(rnd() * 3000)).toISOString(),
  };
  if (eventType !== "search") {
    const product = Math.floor(products * rnd() ** 2);
    e.productId = `product-${product}`;
    e.category = CATEGORIES[product % CATEGORIES.length];
  } else e.query = pick(["shoes", "lamp", "phone case", "novel", "drill"]);
  if (eventType === "purchase" || eventType === "add_to_cart") {
    e.price = Math.floor(100 + rnd() * 50_000) / 100;
    e.quantity = 1 + Math.floor(rnd() ** 3 * 5);
    const [country, region] = pick(COUNTRIES);
    e.location = { country, region };
  }
  return e;
}

let sent = 0;
let accepted = 0;
let rejected = 0;
let failures = 0;
const started = performance.now();
const deadline = started + duration * 1000;
const inflight = new Set<Promise<void>>();
for (let k = 0; performance.now() < deadline; k++) {
  const due = started + ((k * batchSize) / rate) * 1000;
  const wait = due - performance.now();
  if (wait > 0) await Bun.sleep(wait);
  if (performance.now() >= deadline) break;
  if (inflight.size >= 32) await Promise.race(inflight);
  const events = Array.from({ length: batchSize }, event);
  sent += events.length;
  const p = fetch(endpoint, { method: "POST", headers: { "content-type": "application/json", "x-api-key": key }, body: JSON.stringify({ events }) })
    .then(async (res) => {
      if (res.status !== 202) {
        failures++;
        if (failures <= 5) console.error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
        return;
      }
      const body = (await res.json()) as { accepted: number; rejected: unknown[] };
      accepted += body.accepted;
      rejected += body.rejected.length;
    })
    .catch((err) => {
      failures++;
      if (failures <= 5) console.error(`request failed: ${err instanceof Error ? err.message : String(err)}`);
    })
    .finally(() => inflight.delete(p));
  inflight.add(p);
}
await Promise.all(inflight);
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({
    endpoint,
    seconds: Number(seconds.toFixed(1)),
    sent,
    accepted,
    rejected,
    failedRequests: failures,
    eventsPerSecond: Math.round(accepted / seconds),
  }),
);
process.exit(failures ? 1 : 0);
