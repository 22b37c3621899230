import { type Db, defineModule } from "../../src/platform.ts";
import type { PostsApi } from "../posts/index.ts";
import type { TimelineCache } from "./cache.ts";
import { fanOutSubscription } from "./fan-out.ts";
import { timelinesRoutes } from "./routes.ts";

export type { TimelineCache } from "./cache.ts";
export { createMemoryTimelineCache } from "./cache.ts";
export { createRedisTimelineCache } from "./redis-cache.ts";

/** TimelinesModuleDeps are the timelines module's dependencies. */
export interface TimelinesModuleDeps {
  db: Db;
  posts: Pick<PostsApi, "getPosts">;
  /** Followers inactive this many days are skipped by fan-out (default 30); their next read rebuilds. */
  inactiveDays?: number;
  /** Authors with more followers than this (default 10,000) are merged on read instead of fanned out. */
  celebrityThreshold?: number;
  /** The first-page cache, invalidated by fan-out; none means every read goes to Postgres. */
  cache?: TimelineCache;
  /** The cache's TTL in seconds (default 30), for invalidating deleted merged-on-read posts. */
  cacheTtlSeconds?: number;
}

/**
 * createTimelinesModule builds home timelines: fanned out on write from post and follow events
 * (its own projections of follows and posts, no reads of other modules' tables), hybrid
 * (celebrities' posts merged on read), capped, and rebuilt on read for returning readers; the first
 * page is cached (Redis or memory) and invalidated by fan-out. It publishes no events.
 *
 * @example const timelines = createTimelinesModule({ db, posts: postsModule.api });
 */
export function createTimelinesModule(deps: TimelinesModuleDeps) {
  const options = {
    inactiveDays: deps.inactiveDays ?? 30,
    celebrityThreshold: deps.celebrityThreshold ?? 10_000,
    cache: deps.cache,
    cacheTtlSeconds: deps.cacheTtlSeconds ?? 30,
    db: deps.db,
  };
  return defineModule({
    name: "timelines",
    events: [],
    api: {},
    routes: (router) => timelinesRoutes(router, { ...options, db: deps.db, posts: deps.posts }),
    subscriptions: [fanOutSubscription(options)],
  });
}
