import { sign, verify } from "hono/jwt";
import { currentEventContext } from "../../outbox/context.ts";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";
import type { AuthUser, TokenVerifier } from "./env.ts";

/** Access says who may call a route: anyone, any signed-in user, or admins only. */
export type Access = "public" | "user" | "admin";

/** TokenIssuer signs access tokens for a user, and forgets what it knows of an account whose sessions just ended. */
export interface TokenIssuer {
  /** issue signs a token for the account at its current token version. */
  issue(user: AuthUser & { tokenVersion: number }): Promise<{ accessToken: string; tokenType: "Bearer"; expiresIn: number }>;
  /**
   * forget drops this process's cached state of an account, so its revoked tokens are refused
   * at once here (other replicas refuse them within the account cache's lifetime).
   */
  forget(userId: string): void;
}

/** AccountState is what a token check needs to know of its account now. */
export interface AccountState {
  role: "user" | "admin";
  username: string;
  /** Bumped by a password change or a disable: tokens of an older version are refused. */
  tokenVersion: number;
  disabled: boolean;
}

/** AccountLookup reads an account's state, or undefined when there is no such account. */
export type AccountLookup = (userId: string) => Promise<AccountState | undefined>;

/** JwtAuthOptions tune createJwtAuth. */
export interface JwtAuthOptions {
  /** Reads the account behind a token: every request is checked against it. */
  accounts: AccountLookup;
  /** Verified tokens kept (default 10,000). */
  cacheSize?: number;
  /** How long an account's state is trusted before it is read again (default 5,000 ms; 0: every request). */
  accountCacheMs?: number;
}

const ISSUER = "eventful-monolith";
/** Verified tokens kept by createJwtAuth; a client reuses its token for its whole lifetime. */
const VERIFIED_TOKENS_MAX = 10_000;
const ACCOUNT_CACHE_MS = 5000;

const invalid = () => new UnauthorizedError("the access token is invalid", "AUTH.TOKEN_INVALID");
const revoked = () => new UnauthorizedError("the access token is no longer valid; sign in again", "AUTH.TOKEN_REVOKED");

/**
 * createJwtAuth builds the HS256 token issuer and verifier from a secret and a lifetime.
 *
 * A token is accepted when its signature is right, it names our issuer, it has an `exp` (a token
 * without one would be valid forever) that has not passed, and its account still exists, is not
 * disabled, and is at the token's version (`ver`: a password change or a disable moves the
 * version on, ending every older token). The caller's role and name are the account's current
 * ones, not the token's.
 *
 * Checking a signature costs tens of microseconds (WebCrypto imports the key on every call), more
 * than the rest of a signed-in read, so the verifier keeps the claims of the tokens it has
 * verified, by their exact text, until they expire: a bounded LRU (`cacheSize`, default 10,000).
 * Only a byte-identical token can hit, so a forged or altered one is always checked in full.
 * Account states are kept per account for `accountCacheMs` (one lookup per account per 5 s, shared
 * by concurrent requests), so the hot path stays one statement; `forget` drops one at once.
 */
export function createJwtAuth(secret: string, ttlSeconds: number, opts: JwtAuthOptions): TokenIssuer & { verify: TokenVerifier } {
  const cacheSize = opts.cacheSize ?? VERIFIED_TOKENS_MAX;
  const accountCacheMs = opts.accountCacheMs ?? ACCOUNT_CACHE_MS;
  // Map iteration order is insertion order: a hit moves its token to the end, the first is the least recently used.
  const verified = new Map<string, { sub: string; ver: number; exp: number }>();
  // `read` is set once the state's read has settled with a value (what `known` answers from).
  const states = new Map<string, { at: number; state: Promise<AccountState | undefined>; read?: { value: AccountState | undefined } }>();

  function accountState(sub: string): Promise<AccountState | undefined> {
    const now = performance.now();
    const hit = states.get(sub);
    if (hit && now - hit.at < accountCacheMs) return hit.state;
    const state = opts.accounts(sub);
    if (accountCacheMs > 0) {
      // Entries are in insertion order, so the first is the oldest: drop it when full (its
      // account is read again on its next request). A hit re-inserts after expiry only.
      states.delete(sub);
      if (states.size >= cacheSize) states.delete(states.keys().next().value!);
      const entry: { at: number; state: Promise<AccountState | undefined>; read?: { value: AccountState | undefined } } = { at: now, state };
      states.set(sub, entry);
      state.then(
        (value) => {
          entry.read = { value };
        },
        // A failed read is not remembered: the next request tries again.
        () => states.get(sub) === entry && states.delete(sub),
      );
    }
    return state;
  }

  /** caller is the account check of verified claims: the caller, or the refusal. */
  function caller(sub: string, ver: number, state: AccountState | undefined): AuthUser {
    if (!state || state.disabled || state.tokenVersion !== ver) throw revoked();
    return { id: sub, role: state.role, username: state.username };
  }

  async function claims(token: string): Promise<{ sub: string; ver: number; exp: number }> {
    const hit = verified.get(token);
    if (hit) {
      verified.delete(token);
      // Expiry as hono's verify judges it: expired once `exp <= now` in whole seconds.
      if (hit.exp > Math.floor(Date.now() / 1000)) {
        verified.set(token, hit);
        return hit;
      }
      throw new UnauthorizedError("the access token has expired", "AUTH.TOKEN_EXPIRED");
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
    const { sub, ver, exp, role } = payload;
    if (typeof sub !== "string" || typeof exp !== "number" || !Number.isSafeInteger(ver) || (role !== "user" && role !== "admin")) throw invalid();
    const verifiedClaims = { sub, ver: ver as number, exp };
    if (cacheSize > 0) {
      if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
      verified.set(token, verifiedClaims);
    }
    return verifiedClaims;
  }

  return {
    async issue(user) {
      const now = Math.floor(Date.now() / 1000);
      const accessToken = await sign(
        { sub: user.id, role: user.role, username: user.username, ver: user.tokenVersion, iss: ISSUER, iat: now, exp: now + ttlSeconds },
        secret,
        "HS256",
      );
      return { accessToken, tokenType: "Bearer", expiresIn: ttlSeconds };
    },
    forget(userId) {
      states.delete(userId);
    },
    verify: Object.assign(
      async (token: string) => {
        const { sub, ver } = await claims(token);
        // Not a uuid cannot be an account; asking the database would only be a 400 from it.
        if (!UUID.test(sub)) throw invalid();
        return caller(sub, ver, await accountState(sub));
      },
      {
        // The common case of a signed-in request, without a promise: a token verified before,
        // unexpired, of an account whose state is cached, fresh and read. It answers what `verify`
        // would (the same checks, the same LRU bump), or undefined for `verify` to decide.
        known(token: string): AuthUser | undefined {
          const hit = verified.get(token);
          if (!hit || hit.exp <= Math.floor(Date.now() / 1000) || !UUID.test(hit.sub)) return undefined;
          const entry = states.get(hit.sub);
          if (!entry?.read || performance.now() - entry.at >= accountCacheMs) return undefined;
          const state = entry.read.value;
          if (!state || state.disabled || state.tokenVersion !== hit.ver) return undefined;
          verified.delete(token);
          verified.set(token, hit);
          return { id: hit.sub, role: state.role, username: state.username };
        },
      },
    ),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * callerOf is a route's access rule applied to a request's `Authorization` header: the verified
 * caller, or undefined on a public route called without a token. A missing, malformed or refused
 * token throws UnauthorizedError (even on a public route: a bad token is never ignored), a user on
 * an admin route ForbiddenError. `onCaller` sees the caller before the role check. The answer is
 * given at once (a value, or a synchronous throw) when the verifier `known`s the token, else as a
 * promise: callers `await` it, or test for a promise to skip the await on the common path.
 */
export function callerOf(
  header: string | undefined,
  access: Access,
  verifyToken: TokenVerifier,
  onCaller?: (user: AuthUser) => void,
): AuthUser | undefined | Promise<AuthUser | undefined> {
  if (access === "public" && !header) return undefined;
  if (!header) throw new UnauthorizedError("this route needs a bearer token", "AUTH.MISSING_TOKEN");
  const [scheme, token] = header.split(" ");
  if (scheme?.toLowerCase() !== "bearer" || !token) throw new UnauthorizedError("use the Bearer scheme", "AUTH.TOKEN_INVALID");
  const known = verifyToken.known?.(token);
  if (known) return allowed(known, access, onCaller);
  return verifyToken(token).then((user) => allowed(user, access, onCaller));
}

function allowed(user: AuthUser, access: Access, onCaller: ((user: AuthUser) => void) | undefined): AuthUser {
  onCaller?.(user);
  if (access === "admin" && user.role !== "admin") throw new ForbiddenError("this route needs the admin role", "AUTH.ADMIN_REQUIRED");
  return user;
}

/** nameActor names the caller as the actor of the events appended while handling their request. */
export function nameActor(user: AuthUser): void {
  const ctx = currentEventContext();
  if (ctx) ctx.actorId = user.id;
}

/** currentUser returns the caller of a non-public route (from a Hono context, or a native route's input). */
export function currentUser(c: { get(key: "user"): AuthUser | undefined } | { readonly user?: AuthUser | undefined }): AuthUser {
  const user = "get" in c ? c.get("user") : c.user;
  if (!user) throw new UnauthorizedError();
  return user;
}
