import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, listOf, PageQuery, problem, userText } from "../../src/platform.ts";
import type { UsersDeps } from "./commands.ts";
import { follow, listFollows, unfollow } from "./follows.ts";
import { getPreferences, getProfile, updatePreferences, updateProfile } from "./profile.ts";

const ProfileSchema = z
  .object({
    id: z.uuid(),
    username: z.string(),
    displayName: z.string(),
    bio: z.string(),
    followersCount: z.number().int(),
    followingCount: z.number().int(),
    postsCount: z.number().int(),
    createdAt: z.iso.datetime(),
  })
  .openapi("Profile");

const UpdateProfileSchema = z
  .object({
    displayName: userText().trim().min(1).max(80).optional(),
    bio: userText({ multiline: true }).trim().max(500).optional(),
  })
  .strict()
  .refine((b) => b.displayName !== undefined || b.bio !== undefined, { message: "give displayName or bio" })
  .openapi("UpdateProfile");

const PreferencesSchema = z.object({ emailNotifications: z.boolean(), postNotifications: z.boolean() }).openapi("Preferences");
const UpdatePreferencesSchema = PreferencesSchema.partial()
  .strict()
  .refine((b) => b.emailNotifications !== undefined || b.postNotifications !== undefined, { message: "give emailNotifications or postNotifications" })
  .openapi("UpdatePreferences");

const FollowEntrySchema = z.object({ id: z.uuid(), username: z.string(), displayName: z.string(), followedAt: z.iso.datetime() }).openapi("FollowEntry");
const FollowPage = listOf(FollowEntrySchema, "FollowPage");

const UserIdParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });
const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

/** profileRoutes adds public profiles, profile and preference edits, follows and their lists. */
export function profileRoutes(api: OpenAPIHono<AppEnv>, deps: UsersDeps): void {
  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "patch",
        path: "/users/me",
        tags: ["users"],
        summary: "Change the caller's display name and/or bio",
        request: { body: { required: true, content: json(UpdateProfileSchema) } },
        responses: {
          200: { description: "The profile as it now is", content: json(ProfileSchema) },
          400: problem("Invalid input"),
          401: problem("Not signed in"),
        },
      },
    ),
    async (c) => c.json(await updateProfile(deps, currentUser(c).id, c.req.valid("json")), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/users/me/preferences",
        tags: ["users"],
        summary: "The caller's notification preferences",
        responses: { 200: { description: "Preferences", content: json(PreferencesSchema) }, 401: problem("Not signed in") },
      },
    ),
    async (c) => c.json(await getPreferences(deps.db, currentUser(c).id), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "patch",
        path: "/users/me/preferences",
        tags: ["users"],
        summary: "Switch email or new-post notifications on or off",
        request: { body: { required: true, content: json(UpdatePreferencesSchema) } },
        responses: {
          200: { description: "Preferences as they now are", content: json(PreferencesSchema) },
          400: problem("Invalid input"),
          401: problem("Not signed in"),
        },
      },
    ),
    async (c) => c.json(await updatePreferences(deps.db, currentUser(c).id, c.req.valid("json")), 200),
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/users/{id}",
        tags: ["users"],
        summary: "A user's public profile",
        request: { params: UserIdParam },
        responses: {
          200: { description: "Profile", content: json(ProfileSchema) },
          400: problem("Invalid id"),
          401: problem("Not signed in"),
          404: problem("No such user"),
        },
      },
    ),
    async (c) => c.json(await getProfile(deps.db, c.req.valid("param").id), 200),
  );

  for (const method of ["put", "delete"] as const) {
    api.openapi(
      defineRoute(
        { access: "user" },
        {
          method,
          path: "/users/{id}/follow",
          tags: ["users"],
          summary: method === "put" ? "Follow a user (idempotent)" : "Unfollow a user (idempotent)",
          request: { params: UserIdParam },
          responses: {
            204: { description: method === "put" ? "The caller follows the user" : "The caller does not follow the user" },
            400: problem("Invalid id"),
            401: problem("Not signed in"),
            404: problem("No such user"),
            422: problem("A user cannot follow themselves"),
          },
        },
      ),
      async (c) => {
        const { id } = c.req.valid("param");
        await (method === "put" ? follow : unfollow)(deps, currentUser(c).id, id);
        return c.body(null, 204);
      },
    );
  }

  for (const direction of ["followers", "following"] as const) {
    api.openapi(
      defineRoute(
        { access: "user" },
        {
          method: "get",
          path: `/users/{id}/${direction}`,
          tags: ["users"],
          summary: direction === "followers" ? "Who follows the user, newest first" : "Whom the user follows, newest first",
          request: { params: UserIdParam, query: PageQuery },
          responses: {
            200: { description: "A page", content: json(FollowPage) },
            400: problem("Invalid id, cursor or limit"),
            401: problem("Not signed in"),
            404: problem("No such user"),
          },
        },
      ),
      async (c) => c.json(await listFollows(deps.db, c.req.valid("param").id, direction, c.req.valid("query")), 200),
    );
  }
}
