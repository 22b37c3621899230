import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { DomainError } from "../errors.ts";
import { type Access, callerOf, nameActor } from "./auth.ts";
import type { AppEnv, AuthUser, Platform, RateLimitResult } from "./env.ts";
import { idempotent } from "./idempotency.ts";
import { clientIp, countRefusedAt, countRequest, withRateHeaders } from "./rate-limit.ts";
import { syncFirst } from "./validation.ts";

/** RouteOptions are what a route states besides its OpenAPI shape. */
export interface RouteOptions {
  /** Who may call it. Required: there is no default, every route says it. */
  access: Access;
  /** Honour `Idempotency-Key` (creating POSTs). */
  idempotent?: boolean;
  /** Skip rate limiting (probes). */
  unlimited?: boolean;
}

/**
 * defineRoute is `createRoute` plus the route's access rule, rate limit and idempotency, so the
 * OpenAPI document and the enforcement come from one declaration.
 *
 * @example app.openapi(defineRoute({ access: "user" }, { method: "get", path: "/users/me", responses }), handler)
 */
export function defineRoute<R extends RouteConfig>(opts: RouteOptions, config: R): R {
  const { access } = opts;
  // Access and rate limit in one middleware: one step less in every request's chain.
  const guard: MiddlewareHandler<AppEnv> = async (c, next) => {
    const { user, limit } = await admit(c.get("platform"), opts, c.req.header("authorization"), () => clientIp(c), nameActor);
    if (user) c.set("user", user);
    return limit ? withRateHeaders(c, limit, next) : next();
  };
  const middleware: MiddlewareHandler<AppEnv>[] = [guard];
  if (opts.idempotent) middleware.push(idempotent());
  const own = config.middleware ? (Array.isArray(config.middleware) ? config.middleware : [config.middleware]) : [];
  const request = config.request;
  if (request) {
    for (const schema of [request.query, request.params, request.headers, request.cookies]) syncFirst(schema);
    for (const media of Object.values(request.body?.content ?? {})) syncFirst((media as { schema?: unknown } | undefined)?.schema);
  }
  const route = createRoute({
    ...config,
    security: access === "public" ? [] : [{ bearerAuth: [] }],
    middleware: [...middleware, ...own] as never,
    "x-access": access,
  }) as R;
  declared.set(route, { ...opts, ownMiddleware: own.length > 0 });
  return route;
}

const declared = new WeakMap<object, RouteOptions & { ownMiddleware: boolean }>();

/** routeOptions returns what `defineRoute` was told of a route (and whether it has middleware of its own), or undefined for another route. */
export function routeOptions(route: object): (RouteOptions & { ownMiddleware: boolean }) | undefined {
  return declared.get(route);
}

/** Admitted is what `admit` lets through: the caller and the budget left. */
export interface Admitted {
  user: AuthUser | undefined;
  limit: RateLimitResult | undefined;
}

/**
 * admit applies a route's access rule and rate limit to one request: the caller (undefined on a
 * public route called without a token) and, unless the route is `unlimited`, the budget left. A
 * refused caller (bad token, wrong role) is counted against its address too, and gets the 429
 * instead once that budget is spent; an admitted one over either budget gets the 429.
 * `defineRoute`'s guard and natively served routes (`native-route.ts`) both run it. The common
 * case (a token the verifier knows, a count decided in process) is answered at once, a value or a
 * synchronous throw, without a promise or an await; anything else as a promise.
 */
export function admit(
  platform: Platform,
  opts: RouteOptions,
  authorization: string | undefined,
  ip: () => string,
  onCaller?: (user: AuthUser) => void,
): Admitted | Promise<Admitted> {
  let user: AuthUser | undefined | Promise<AuthUser | undefined>;
  try {
    user = callerOf(authorization, opts.access, platform.verifyToken, onCaller);
  } catch (err) {
    if (opts.unlimited) throw err;
    return refused(platform, ip, err);
  }
  if (opts.unlimited) return user instanceof Promise ? user.then(unlimited) : unlimited(user);
  if (user instanceof Promise) {
    return user.then(
      (u) => counted(platform, ip, u),
      (err) => refused(platform, ip, err),
    );
  }
  return counted(platform, ip, user);
}

const unlimited = (user: AuthUser | undefined): Admitted => ({ user, limit: undefined });

function counted(platform: Platform, ip: () => string, user: AuthUser | undefined): Admitted | Promise<Admitted> {
  const limit = countRequest(platform.rateLimiter, ip(), user);
  return limit instanceof Promise ? limit.then((l) => ({ user, limit: l })) : { user, limit };
}

/** refused counts a request its access check refused against its address (the 429 once that budget is spent), then throws the refusal. */
async function refused(platform: Platform, ip: () => string, err: unknown): Promise<never> {
  if (err instanceof DomainError && (err.kind === "unauthorized" || err.kind === "forbidden")) await countRefusedAt(platform.rateLimiter, ip());
  throw err;
}

/** ProblemSchema documents the RFC 9457 body every error answers with. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    code: z.string(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string(), code: z.string().optional() })).optional(),
  })
  .openapi("Problem");

/** problem documents one problem+json response of a route. */
export const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});
