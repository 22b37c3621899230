import { type Db, defineModule } from "../../src/platform.ts";
import type { PostsApi } from "../posts/index.ts";
import { indexSubscription } from "./projection.ts";
import { searchRoutes } from "./routes.ts";

/** SearchModuleDeps are the search module's dependencies. */
export interface SearchModuleDeps {
  db: Db;
  posts: Pick<PostsApi, "getPosts">;
}

/**
 * createSearchModule builds search: posts by Postgres full-text search (tags weighed above the
 * text) and people by name prefix, over its own index, a projection of the posts and users
 * modules' public events (it never queries their tables). It publishes no events.
 *
 * @example const search = createSearchModule({ db, posts: postsModule.api });
 */
export function createSearchModule(deps: SearchModuleDeps) {
  return defineModule({
    name: "search",
    events: [],
    api: {},
    routes: (router) => searchRoutes(router, deps),
    subscriptions: [indexSubscription],
  });
}
