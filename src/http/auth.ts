import type { Context } from "hono";
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
/** Verified tokens kept by createJwtAuth; a client reuses its token for its whole lifetime. */
const VERIFIED_TOKENS_MAX = 10_000;

/**
 * createJwtAuth builds the HS256 token issuer and verifier from a secret and a lifetime.
 *
 * Checking a signature costs tens of microseconds (WebCrypto imports the key on every call), more
 * than the rest of a signed-in read, so the verifier keeps the identities of the tokens it has
 * verified, by their exact text, until they expire: a bounded LRU (`cacheSize`, default 10,000).
 * Only a byte-identical token can hit, so a forged or altered one is always checked in full.
 */
export function createJwtAuth(secret: string, ttlSeconds: number, opts: { cacheSize?: number } = {}): TokenIssuer & { verify: TokenVerifier } {
  const cacheSize = opts.cacheSize ?? VERIFIED_TOKENS_MAX;
  // Map iteration order is insertion order: a hit moves its token to the end, the first is the least recently used.
  const verified = new Map<string, { user: AuthUser; exp: number }>();
  return {
    async issue(user) {
      const now = Math.floor(Date.now() / 1000);
      const accessToken = await sign({ sub: user.id, role: user.role, username: user.username, iss: ISSUER, iat: now, exp: now + ttlSeconds }, secret, "HS256");
      return { accessToken, tokenType: "Bearer", expiresIn: ttlSeconds };
    },
    async verify(token) {
      const hit = verified.get(token);
      if (hit) {
        verified.delete(token);
        // Expiry as hono's verify judges it: expired once `exp <= now` in whole seconds.
        if (hit.exp > Math.floor(Date.now() / 1000)) {
          verified.set(token, hit);
          return hit.user;
        }
      }
      let payload: Record<string, unknown>;
      try {
        payload = await verify(token, secret, { alg: "HS256", iss: ISSUER });
      } catch (err) {
        const expired = err instanceof Error && err.name === "JwtTokenExpired";
        throw new UnauthorizedError(
          expired ? "the access token has expired" : "the access token is invalid",
          expired ? "AUTH.TOKEN_EXPIRED" : "AUTH.TOKEN_INVALID",
        );
      }
      const { sub, role, username } = payload;
      if (typeof sub !== "string" || (role !== "user" && role !== "admin") || typeof username !== "string") {
        throw new UnauthorizedError("the access token is invalid", "AUTH.TOKEN_INVALID");
      }
      const user: AuthUser = Object.freeze({ id: sub, role, username });
      if (cacheSize > 0) {
        if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
        verified.set(token, { user, exp: typeof payload.exp === "number" ? payload.exp : Number.POSITIVE_INFINITY });
      }
      return user;
    },
  };
}

async function authenticate(c: Context<AppEnv>): Promise<AuthUser> {
  const header = c.req.header("authorization");
  if (!header) throw new UnauthorizedError("this route needs a bearer token", "AUTH.MISSING_TOKEN");
  const [scheme, token] = header.split(" ");
  if (scheme?.toLowerCase() !== "bearer" || !token) throw new UnauthorizedError("use the Bearer scheme", "AUTH.TOKEN_INVALID");
  const user = await c.get("platform").verifyToken(token);
  // Events appended while handling this request name the caller as their actor.
  const ctx = currentEventContext();
  if (ctx) ctx.actorId = user.id;
  return user;
}

/**
 * authorize enforces a route's access level and records the caller as `user`. A public route
 * still identifies a caller who sends a token, so rate limits and idempotency can key on the
 * user; a bad token is refused even there.
 */
export async function authorize(c: Context<AppEnv>, access: Access): Promise<void> {
  if (access === "public" && !c.req.header("authorization")) return;
  const user = await authenticate(c);
  if (access === "admin" && user.role !== "admin") throw new ForbiddenError("this route needs the admin role", "AUTH.ADMIN_REQUIRED");
  c.set("user", user);
}

/** currentUser returns the caller of a non-public route. */
export function currentUser(c: { get(key: "user"): AuthUser | undefined }): AuthUser {
  const user = c.get("user");
  if (!user) throw new UnauthorizedError();
  return user;
}
