import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, listOf, PageQuery, problem } from "../../src/platform.ts";
import { PostSchema } from "../posts/index.ts";
import { type SearchDeps, searchPosts, searchUsers } from "./queries.ts";

/** MAX_QUERY_LENGTH bounds `q`: longer is no search anyone types, and costs the parser. */
export const MAX_QUERY_LENGTH = 200;

const SearchQuery = PageQuery.extend({
  q: z
    .string()
    .trim()
    .min(1, "must not be blank")
    .max(MAX_QUERY_LENGTH, `at most ${MAX_QUERY_LENGTH} characters`)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
    .refine((q) => !/[\u0000-\u001f\u007f]/.test(q), "must not contain control characters")
    .openapi({
      description: `What to look for, 1-${MAX_QUERY_LENGTH} characters. Posts: words, "quoted phrases", or, -excluded (web search syntax), matched in the text and the tags. Users: the start of a username or display name, any case.`,
      example: "rust",
    }),
  type: z.enum(["posts", "users"]).default("posts").openapi({ description: "What to search: posts (default) or users." }),
});

const UserHitSchema = z.object({ id: z.uuid(), username: z.string(), displayName: z.string() }).openapi("UserHit");

/** searchRoutes adds `GET /search`. */
export function searchRoutes(api: OpenAPIHono<AppEnv>, deps: SearchDeps): void {
  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/search",
        tags: ["search"],
        summary: "Search posts (full text, best match first) or users (name prefix)",
        request: { query: SearchQuery },
        responses: {
          200: {
            description: "A page of posts (type=posts) or users (type=users)",
            content: { "application/json": { schema: listOf(z.union([PostSchema, UserHitSchema]), "SearchPage") } },
          },
          400: problem("Invalid q, type, cursor or limit"),
          401: problem("Not signed in"),
        },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(q.type === "users" ? await searchUsers(deps, q) : await searchPosts(deps, currentUser(c).id, q), 200);
    },
  );
}
