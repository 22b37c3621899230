import { type Db, defineModule } from "../../src/platform.ts";
import type { PostsApi } from "../posts/index.ts";
import { fanOutSubscription } from "./fan-out.ts";
import { timelinesRoutes } from "./routes.ts";

/** TimelinesModuleDeps are the timelines module's dependencies. */
export interface TimelinesModuleDeps {
  db: Db;
  posts: Pick<PostsApi, "getPosts">;
  /** Followers inactive this many days are skipped by fan-out (default 30); their next read rebuilds. */
  inactiveDays?: number;
}

/**
 * createTimelinesModule builds home timelines: fanned out on write from post and follow events
 * (its own projections of follows and posts, no reads of other modules' tables), capped, and
 * rebuilt on read when empty. It publishes no events.
 *
 * @example const timelines = createTimelinesModule({ db, posts: postsModule.api });
 */
export function createTimelinesModule(deps: TimelinesModuleDeps) {
  const inactiveDays = deps.inactiveDays ?? 30;
  return defineModule({
    name: "timelines",
    events: [],
    api: {},
    routes: (router) => timelinesRoutes(router, { db: deps.db, posts: deps.posts, inactiveDays }),
    subscriptions: [fanOutSubscription({ inactiveDays })],
  });
}
