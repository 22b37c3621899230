import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, problem, signInLimit, type TokenIssuer, userText } from "../../src/platform.ts";
import { registerUser, type UsersDeps } from "./commands.ts";
import { authenticate, getAccount } from "./queries.ts";

const AccountSchema = z
  .object({
    id: z.uuid(),
    username: z.string(),
    email: z.email(),
    displayName: z.string(),
    role: z.enum(["user", "admin"]),
    createdAt: z.iso.datetime(),
  })
  .openapi("Account");

const RegisterSchema = z
  .object({
    username: z.string().regex(/^[A-Za-z0-9_]{3,30}$/, "3-30 characters of letters a-z or A-Z, digits and _ (the case is kept; uniqueness ignores it)"),
    email: z.email().max(254),
    password: z.string().min(8, "at least 8 characters").max(256),
    displayName: userText().trim().min(1).max(80).optional(),
  })
  .strict()
  .openapi("RegisterUser");

const TokenRequestSchema = z
  .object({ login: z.string().min(1).max(254), password: z.string().min(1).max(256) })
  .strict()
  .openapi("TokenRequest");

const TokenSchema = z.object({ accessToken: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number().int() }).openapi("Token");

/** usersRoutes adds the account and token routes. */
export function usersRoutes(api: OpenAPIHono<AppEnv>, deps: UsersDeps & { tokens: TokenIssuer }): void {
  api.openapi(
    defineRoute(
      { access: "public", idempotent: true },
      {
        method: "post",
        path: "/users",
        tags: ["users"],
        summary: "Register an account",
        request: { body: { required: true, content: { "application/json": { schema: RegisterSchema } } } },
        responses: {
          201: { description: "Created", content: { "application/json": { schema: AccountSchema } } },
          400: problem("Invalid input"),
          409: problem("Username or email taken"),
        },
      },
    ),
    async (c) => {
      const account = await registerUser(deps, c.req.valid("json"));
      c.header("location", `/api/v1/users/${account.id}`);
      return c.json(account, 201);
    },
  );

  api.openapi(
    defineRoute(
      { access: "public" },
      {
        method: "post",
        path: "/auth/token",
        tags: ["auth"],
        summary: "Exchange a login (username or email) and password for a bearer token",
        request: { body: { required: true, content: { "application/json": { schema: TokenRequestSchema } } } },
        responses: {
          200: { description: "Token", content: { "application/json": { schema: TokenSchema } } },
          400: problem("Invalid input"),
          401: problem("Wrong login or password"),
          429: problem("Too many failed sign-ins for this account or from this address"),
        },
      },
    ),
    async (c) => {
      const { login, password } = c.req.valid("json");
      // Failed attempts are counted per target account and per address (credential stuffing).
      const limit = signInLimit(c);
      const account = await authenticate(deps.db, login, password, limit.check);
      await limit.succeeded();
      return c.json(await deps.tokens.issue({ id: account.id, role: account.role, username: account.username, tokenVersion: account.tokenVersion }), 200);
    },
  );

  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/users/me",
        tags: ["users"],
        summary: "The caller's own account",
        responses: {
          200: { description: "Account", content: { "application/json": { schema: AccountSchema } } },
          401: problem("Not signed in"),
        },
      },
    ),
    async (c) => c.json(await getAccount(deps.db, currentUser(c).id), 200),
  );
}
