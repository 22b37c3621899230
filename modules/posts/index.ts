import { type Appender, type Db, defineModule } from "../../src/platform.ts";
import type { UsersApi } from "../users/index.ts";
import { postEvents } from "./events.ts";
import { getPost, getPosts } from "./queries.ts";
import { postsRoutes } from "./routes.ts";
import type { Post } from "./views.ts";

export { PostAuthorSchema, PostSchema } from "./post-schema.ts";
export type { Post, PostAuthor } from "./views.ts";

/** PostsApi is the read API other modules may call synchronously. */
export interface PostsApi {
  /** getPost returns one live post as `viewerId` sees it, or throws a 404 `POSTS.NOT_FOUND`. */
  getPost(viewerId: string, id: string): Promise<Post>;
  /** getPosts returns the live posts among `ids` as `viewerId` sees them, in the order given. */
  getPosts(viewerId: string, ids: string[]): Promise<Post[]>;
}

/** PostsModuleDeps are the posts module's dependencies: it reads authors through the users API. */
export interface PostsModuleDeps {
  db: Db;
  outbox: Appender;
  users: Pick<UsersApi, "findAccounts" | "getAccount">;
}

/**
 * createPostsModule builds the posts module: posts, replies and likes, with exact like and
 * reply counts, publishing `post.created`, `post.deleted`, `post.liked` and `post.unliked`.
 *
 * @example const posts = createPostsModule({ db, outbox, users: usersModule.api });
 */
export function createPostsModule(deps: PostsModuleDeps) {
  const api: PostsApi = {
    getPost: (viewerId, id) => getPost(deps, viewerId, id),
    getPosts: (viewerId, ids) => getPosts(deps, viewerId, ids),
  };
  return defineModule<PostsApi>({
    name: "posts",
    events: postEvents,
    api,
    routes: (router) => postsRoutes(router, deps),
  });
}
