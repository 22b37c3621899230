import type { MiddlewareHandler } from "hono";
import { sign, verify } from "hono/jwt";
import { currentEventContext } from "../../outbox/context.ts";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";
import type { AppEnv, AuthUser, TokenVerifier } from "./env.ts";

/** Access says who may call a route: anyone, any signed-in user, or admins only. */
export type Access = "public" | "user" | "admin";

/** TokenIssuer signs access tokens for a user. */
export interface TokenIssuer {
  issue(user: AuthUser): Promise<{ accessToken: string; tokenType: "Bearer"; expiresIn: number }>;
}

const ISSUER = "eventful-monolith";

/** createJwtAuth builds the HS256 token issuer and verifier from a secret and a lifetime. */
export function createJwtAuth(secret: string, ttlSeconds: number): TokenIssuer & { verify: TokenVerifier } {
  return {
    async issue(user) {
      const now = Math.floor(Date.now() / 1000);
      const accessToken = await sign(
        { sub: user.id, role: user.role, username: user.username, iss: ISSUER, iat: now, exp: now + ttlSeconds },
        secret,
        "HS256",
      );
      return { accessToken, tokenType: "Bearer", expiresIn: ttlSeconds };
    },
    async verify(token) {
      let payload: Record<string, unknown>;
      try {
        payload = await verify(token, secret, { alg: "HS256", iss: ISSUER });
      } catch (err) {
        const expired = err instanceof Error && err.name === "JwtTokenExpired";
        throw new UnauthorizedError(expired ? "the access token has expired" : "the access token is invalid", expired ? "AUTH.TOKEN_EXPIRED" : "AUTH.TOKEN_INVALID");
      }
      const { sub, role, username } = payload;
      if (typeof sub !== "string" || (role !== "user" && role !== "admin") || typeof username !== "string") {
        throw new UnauthorizedError("the access token is invalid", "AUTH.TOKEN_INVALID");
      }
      return { id: sub, role, username };
    },
  };
}

async function authenticate(c: Parameters<MiddlewareHandler<AppEnv>>[0]): Promise<AuthUser> {
  const header = c.req.header("authorization");
  if (!header) throw new UnauthorizedError("this route needs a bearer token", "AUTH.MISSING_TOKEN");
  const [scheme, token] = header.split(" ");
  if (scheme?.toLowerCase() !== "bearer" || !token) throw new UnauthorizedError("use the Bearer scheme", "AUTH.TOKEN_INVALID");
  const user = await c.get("verifyToken")(token);
  // Events appended while handling this request name the caller as their actor.
  const ctx = currentEventContext();
  if (ctx) ctx.actorId = user.id;
  return user;
}

/**
 * requireAccess enforces a route's access level. A public route still identifies a caller who
 * sends a valid token, so rate limits and idempotency can key on the user.
 */
export function requireAccess(access: Access): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (access === "public") {
      if (c.req.header("authorization")) c.set("user", await authenticate(c));
      return next();
    }
    const user = await authenticate(c);
    if (access === "admin" && user.role !== "admin") throw new ForbiddenError("this route needs the admin role", "AUTH.ADMIN_REQUIRED");
    c.set("user", user);
    await next();
  };
}

/** currentUser returns the caller of a non-public route. */
export function currentUser(c: { get(key: "user"): AuthUser | undefined }): AuthUser {
  const user = c.get("user");
  if (!user) throw new UnauthorizedError();
  return user;
}
