import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, listOf, PageQuery, problem, userText } from "../../src/platform.ts";
import { createPost, deletePost, likePost, type PostsDeps, unlikePost } from "./commands.ts";
import { PostSchema } from "./post-schema.ts";
import { getPost, listReplies, listUserPosts } from "./queries.ts";

const MAX_CONTENT = 5000;
// Characters as people count them (code points), not UTF-16 units: an emoji is one.
const characters = (s: string) => [...s].length;

const TAG = /^#?[\p{L}\p{N}_]{1,50}$/u;

const CreatePostSchema = z
  .object({
    content: userText({ multiline: true })
      .max(MAX_CONTENT * 2)
      .refine((s) => s.trim().length > 0, "must not be blank")
      .refine((s) => characters(s) <= MAX_CONTENT, `at most ${MAX_CONTENT} characters`),
    mediaUrls: z
      .array(z.url({ protocol: /^https$/, hostname: z.regexes.domain, error: "an https URL" }).max(2048))
      .max(10)
      .default([]),
    tags: z
      .array(z.string().regex(TAG, "1-50 letters, digits or _, optionally after #"))
      .max(20)
      .default([])
      .transform((tags) => [...new Set(tags.map((t) => t.replace(/^#/, "").toLowerCase()))]),
    inReplyToId: z.uuid().optional(),
  })
  .strict()
  .openapi("CreatePost");

const PostPage = listOf(PostSchema, "PostPage");

const IdParam = (what: string) => z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" }, description: what }) });
const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

/** postsRoutes adds posts, replies, likes and a user's posts. */
export function postsRoutes(api: OpenAPIHono<AppEnv>, deps: PostsDeps): void {
  api.openapi(
    defineRoute(
      { access: "user", idempotent: true },
      {
        method: "post",
        path: "/posts",
        tags: ["posts"],
        summary: "Publish a post, or a reply with inReplyToId",
        request: { body: { required: true, content: json(CreatePostSchema) } },
        responses: {
          201: { description: "Created", content: json(PostSchema) },
          400: problem("Invalid input"),
          401: problem("Not signed in"),
          422: problem("The post replied to does not exist"),
        },
      },
    ),
    async (c) => {
      const me = currentUser(c).id;
      const id = await createPost(deps, me, c.req.valid("json"));
      c.header("location", `/api/v1/posts/${id}`);
      return c.json(await getPost(deps, me, id), 201);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/posts/{id}",
        tags: ["posts"],
        summary: "One post",
        request: { params: IdParam("post id") },
        responses: {
          200: { description: "Post", content: json(PostSchema) },
          400: problem("Invalid id"),
          401: problem("Not signed in"),
          404: problem("No such post"),
        },
      },
    ),
    async (c) => c.json(await getPost(deps, currentUser(c).id, c.req.valid("param").id), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "delete",
        path: "/posts/{id}",
        tags: ["posts"],
        summary: "Delete a post (its author or an admin)",
        request: { params: IdParam("post id") },
        responses: {
          204: { description: "Deleted" },
          400: problem("Invalid id"),
          401: problem("Not signed in"),
          403: problem("Not the author nor an admin"),
          404: problem("No such post"),
        },
      },
    ),
    async (c) => {
      await deletePost(deps, currentUser(c), c.req.valid("param").id);
      return c.body(null, 204);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/posts/{id}/replies",
        tags: ["posts"],
        summary: "A post's replies, oldest first",
        request: { params: IdParam("post id"), query: PageQuery },
        responses: {
          200: { description: "A page", content: json(PostPage) },
          400: problem("Invalid id, cursor or limit"),
          401: problem("Not signed in"),
          404: problem("No such post"),
        },
      },
    ),
    async (c) => c.json(await listReplies(deps, currentUser(c).id, c.req.valid("param").id, c.req.valid("query")), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/users/{id}/posts",
        tags: ["posts"],
        summary: "A user's posts and replies, newest first",
        request: { params: IdParam("user id"), query: PageQuery },
        responses: {
          200: { description: "A page", content: json(PostPage) },
          400: problem("Invalid id, cursor or limit"),
          401: problem("Not signed in"),
          404: problem("No such user"),
        },
      },
    ),
    async (c) => c.json(await listUserPosts(deps, currentUser(c).id, c.req.valid("param").id, c.req.valid("query")), 200),
  );

  for (const method of ["put", "delete"] as const) {
    api.openapi(
      defineRoute(
        { access: "user" },
        {
          method,
          path: "/posts/{id}/like",
          tags: ["posts"],
          summary: method === "put" ? "Like a post (idempotent)" : "Take back a like (idempotent)",
          request: { params: IdParam("post id") },
          responses: {
            204: { description: method === "put" ? "The caller likes the post" : "The caller does not like the post" },
            400: problem("Invalid id"),
            401: problem("Not signed in"),
            404: problem("No such post"),
          },
        },
      ),
      async (c) => {
        await (method === "put" ? likePost : unlikePost)(deps, currentUser(c).id, c.req.valid("param").id);
        return c.body(null, 204);
      },
    );
  }
}
