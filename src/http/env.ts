import type { Logger } from "pino";

/** AuthUser is the verified identity behind a bearer token. */
export interface AuthUser {
  id: string;
  role: "user" | "admin";
  username: string;
}

/**
 * TokenVerifier turns a bearer token into an identity, or throws UnauthorizedError. Its optional
 * `known` answers without awaiting anything when everything the check needs is already at hand
 * (the caller the verifier would resolve to, from its caches), else undefined: then call it.
 */
export type TokenVerifier = ((token: string) => Promise<AuthUser>) & { known?: (token: string) => AuthUser | undefined };

/** Platform is what the HTTP edge's middleware needs from the composition root; one object per app. */
export interface Platform {
  log: Logger;
  verifyToken: TokenVerifier;
  rateLimiter: RateLimiter;
  /** Counts sign-in attempts per target account and per address (see limitSignIn). */
  signInLimiter: RateLimiter;
  idempotencyStore: IdempotencyStore;
  /** Whether `x-forwarded-for` comes from our own proxy and may be believed. */
  trustProxy: boolean;
}

/** AppEnv types the per-request variables every handler can read. */
export interface AppEnv {
  Variables: {
    requestId: string;
    correlationId: string;
    /** The signed-in caller, once the route's access check has run. */
    user?: AuthUser;
    platform: Platform;
    /** The request's child logger, made on first use: read it through `requestLog(c)`. */
    log?: Logger;
  };
}

/** RateLimitResult is one counted hit against a fixed window. */
export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

/** RateKey is one counter a request is counted against, with its budget. */
export interface RateKey {
  key: string;
  max: number;
}

/** RateLimiter counts hits per key; Redis-backed or in-memory. */
export interface RateLimiter {
  readonly kind: "redis" | "memory";
  /** Budget per caller (user, or address while signed out). */
  readonly max: number;
  /** Budget per client address, whoever is signed in. */
  readonly ipMax: number;
  /**
   * hit counts one request against every key at once; it is allowed only when each is within its
   * max. The result is the tightest: at once when it was decided in process (no await to pay), else a promise.
   */
  hit(keys: readonly RateKey[]): RateLimitResult | Promise<RateLimitResult>;
  /** giveBack takes one earlier hit off each key (a successful sign-in does not use the budget of failures). */
  giveBack(keys: readonly string[]): Promise<void>;
}

/** StoredResponse is a first response kept for an Idempotency-Key. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** IdempotencyStore reserves keys and keeps the first response for their lifetime. */
export interface IdempotencyStore {
  /** begin reserves (scope, key) for a request hash: "new", "in_progress", a stored response, or "mismatch". */
  begin(
    scope: string,
    key: string,
    requestHash: string,
  ): Promise<{ state: "new" } | { state: "in_progress" } | { state: "mismatch" } | { state: "done"; response: StoredResponse }>;
  complete(scope: string, key: string, response: StoredResponse): Promise<void>;
  /** abandon releases a reservation whose request failed, so the client may retry. */
  abandon(scope: string, key: string): Promise<void>;
}
