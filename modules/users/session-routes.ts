import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, ForbiddenError, problem, signInLimit, type TokenIssuer } from "../../src/platform.ts";
import type { UsersDeps } from "./commands.ts";
import { changePassword, setDisabled } from "./sessions.ts";

const ChangePasswordSchema = z
  .object({ currentPassword: z.string().min(1).max(256), newPassword: z.string().min(8, "at least 8 characters").max(256) })
  .strict()
  .openapi("ChangePassword");
const TokenSchema = z.object({ accessToken: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number().int() });
const UserIdParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

/** sessionRoutes adds the password change (which ends every other session) and the admin's disable and enable. */
export function sessionRoutes(api: OpenAPIHono<AppEnv>, deps: UsersDeps & { tokens: TokenIssuer }): void {
  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "put",
        path: "/users/me/password",
        tags: ["users"],
        summary: "Change the caller's password; every token issued before stops working, and a new one is returned",
        request: { body: { required: true, content: { "application/json": { schema: ChangePasswordSchema } } } },
        responses: {
          200: { description: "A token for the new session", content: { "application/json": { schema: TokenSchema } } },
          400: problem("Invalid input"),
          401: problem("Not signed in, or the current password is wrong"),
          429: problem("Too many failed password checks for this account or from this address"),
        },
      },
    ),
    async (c) => {
      const limit = signInLimit(c);
      const token = await changePassword(deps, currentUser(c).id, c.req.valid("json"), limit.check);
      await limit.succeeded();
      return c.json(token, 200);
    },
  );

  for (const action of ["disable", "enable"] as const) {
    api.openapi(
      defineRoute(
        { access: "admin" },
        {
          method: "post",
          path: `/admin/users/{id}/${action}`,
          tags: ["admin"],
          summary:
            action === "disable"
              ? "Disable an account: it cannot sign in and every token it holds stops working"
              : "Enable a disabled account again (its old tokens stay revoked)",
          request: { params: UserIdParam },
          responses: { 204: { description: "Done" }, 401: problem("Not signed in"), 403: problem("Admins only"), 404: problem("No such user") },
        },
      ),
      async (c) => {
        const { id } = c.req.valid("param");
        if (action === "disable" && id === currentUser(c).id)
          throw new ForbiddenError("an admin cannot disable their own account", "USERS.CANNOT_DISABLE_SELF");
        await setDisabled(deps, id, action === "disable");
        return c.body(null, 204);
      },
    );
  }
}
