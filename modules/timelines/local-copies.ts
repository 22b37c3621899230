import type { Redis } from "ioredis";
import { PREFIX } from "./cache.ts";

const INVALIDATIONS = "__redis__:invalidate";
// The tracking connection is pinged this often; copies are served only while a PING sent within FRESH_MS has been answered.
const BEAT_MS = 250;
const FRESH_MS = 1000;

/** A read of Redis under way for one reader: its copy is kept only if no invalidation of the reader came meanwhile. */
interface Ticket {
  userId: string;
  epoch: number;
  /** The reader's invalidation count when the read began. */
  seen: number;
  state: { reads: number; invalidations: number };
}

/**
 * localCopies keeps, in this process, the pages it was served from Redis (up to `max` readers,
 * the oldest first out), coherent with Redis by client-side caching: a connection of its own
 * (RESP2, as ioredis does not surface RESP3 invalidation pushes) runs
 * `CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX timeline:` and subscribes to
 * `__redis__:invalidate`, so every change to any `timeline:` key, by any client or process
 * (fan-out, store, another replica, expiry, FLUSHDB), drops this process's copies of that reader.
 *
 * Copies are kept only while that connection is tracking: when it closes, fails, or its setup
 * fails, every copy goes and none is kept until tracking is set up again (an invalidation could
 * have been missed meanwhile). A page read from Redis races the invalidation message on the other
 * connection (a write right after the read can be announced before the read's reply is handled),
 * so reads under way are marked when their reader is invalidated, and a marked read keeps no copy.
 * A copy lives no longer than the Redis entry's remaining TTL. A PING every 250 ms on the tracking
 * connection bounds how far behind it can be: copies are served only while a PING sent within the
 * last second has been answered (its answer comes after every invalidation sent before it).
 */
export function localCopies(redis: Redis, max: number, onError: (err: unknown) => void) {
  // Redis answers a PING on the tracking connection after every invalidation it sent there before
  // it: when the PING sent at `confirmedAt` is answered, every change made before that moment has
  // been applied here. Copies are served only while that is recent, so a connection that hangs
  // silently (no close, no error) leaves copies stale by at most FRESH_MS before they are skipped.
  let confirmedAt = Number.NEGATIVE_INFINITY;
  const heartbeat = setInterval(() => {
    if (!tracking) return;
    const sentAt = performance.now();
    const at = epoch;
    sub.ping().then(
      () => {
        if (at === epoch && sentAt > confirmedAt) confirmedAt = sentAt;
      },
      (err) => {
        onError(err);
        if (at === epoch) reset();
      },
    );
  }, BEAT_MS);
  heartbeat.unref?.();
  const copies = new Map<string, Map<number, { body: Buffer; expiresAt: number }>>();
  const reading = new Map<string, Ticket["state"]>();
  let tracking = false;
  let epoch = 0;
  let closed = false;
  const sub = redis.duplicate({ protocol: 2, autoResubscribe: false, lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
  const forgetAll = () => {
    epoch++;
    confirmedAt = Number.NEGATIVE_INFINITY;
    copies.clear();
  };
  const dropOne = (userId: string) => {
    copies.delete(userId);
    const state = reading.get(userId);
    if (state) state.invalidations++;
  };
  sub.on("error", onError);
  sub.on("close", () => {
    tracking = false;
    forgetAll();
  });
  sub.on("ready", async () => {
    forgetAll();
    try {
      const id = await sub.client("ID");
      await sub.call("CLIENT", "TRACKING", "ON", "REDIRECT", String(id), "BCAST", "PREFIX", PREFIX);
      await sub.subscribe(INVALIDATIONS);
      forgetAll();
      const sentAt = performance.now();
      await sub.ping();
      confirmedAt = sentAt;
      tracking = true;
    } catch (err) {
      onError(err);
      if (!closed) sub.disconnect(true);
    }
  });
  sub.on("messageBuffer", (channel: Buffer, message: Buffer[] | Buffer | null) => {
    if (channel.toString() !== INVALIDATIONS) return;
    // A null list means the whole keyspace changed (FLUSHDB, FLUSHALL).
    if (!Array.isArray(message)) return forgetAll();
    for (const key of message) dropOne(key.toString().slice(PREFIX.length));
  });
  sub.connect().catch(onError);
  /** reset forgets every copy and sets tracking up again on a new connection. */
  function reset(): void {
    if (tracking) {
      tracking = false;
      forgetAll();
      sub.disconnect(true);
    }
  }
  return {
    get(userId: string, limit: number): Buffer | undefined {
      if (!tracking || performance.now() - confirmedAt > FRESH_MS) return undefined;
      const page = copies.get(userId)?.get(limit);
      if (page === undefined) return undefined;
      if (page.expiresAt > Date.now()) return page.body;
      copies.get(userId)!.delete(limit);
      return undefined;
    },
    begin(userId: string): Ticket | undefined {
      if (!tracking) return undefined;
      let state = reading.get(userId);
      if (!state) reading.set(userId, (state = { reads: 0, invalidations: 0 }));
      state.reads++;
      return { userId, epoch, seen: state.invalidations, state };
    },
    keep(t: Ticket, limit: number, body: Buffer, ttlMs: number): void {
      // Only a read that began after the reader's last invalidation (and in this tracking epoch) may keep its page.
      if (!tracking || t.epoch !== epoch || t.state.invalidations !== t.seen || ttlMs <= 0) return;
      let pages = copies.get(t.userId);
      if (!pages) {
        if (copies.size >= max) copies.delete(copies.keys().next().value!);
        copies.set(t.userId, (pages = new Map()));
      }
      pages.set(limit, { body, expiresAt: Date.now() + ttlMs });
    },
    end(t: Ticket): void {
      if (--t.state.reads === 0 && reading.get(t.userId) === t.state) reading.delete(t.userId);
    },
    drop(userIds: readonly string[]): void {
      for (const u of userIds) dropOne(u);
    },
    reset,
    close(): void {
      closed = true;
      clearInterval(heartbeat);
      tracking = false;
      forgetAll();
      sub.disconnect();
    },
  };
}
