import type { OpenAPIHono } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, jsonAnswer, listOf, nativeGet, PageQuery, problem } from "../../src/platform.ts";
import { PostSchema } from "../posts/index.ts";
import { type TimelineDeps, timelineBody } from "./queries.ts";

/** timelinesRoutes adds the caller's home timeline. */
export function timelinesRoutes(api: OpenAPIHono<AppEnv>, deps: TimelineDeps): void {
  // Served natively too (see nativeGet): the hot read of the social benchmark.
  nativeGet(
    api,
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/timeline",
        tags: ["timelines"],
        summary: "The caller's home timeline: their own and their followees' posts, newest first",
        request: { query: PageQuery },
        responses: {
          200: { description: "A page", content: { "application/json": { schema: listOf(PostSchema, "TimelinePage") } } },
          400: problem("Invalid cursor or limit"),
          401: problem("Not signed in"),
        },
      },
    ),
    // The body is built (or taken from the cache) as JSON text, or the bytes Redis holds: served as it is stored.
    (input) => jsonAnswer(timelineBody(deps, currentUser(input).id, input.query)),
  );
}
