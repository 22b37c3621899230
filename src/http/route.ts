import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { DomainError } from "../errors.ts";
import { type Access, authorize } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { idempotent } from "./idempotency.ts";
import { countRefused, enforceRateLimit } from "./rate-limit.ts";
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
  const { access, unlimited } = opts;
  // Access and rate limit in one middleware: one step less in every request's chain.
  const guard: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (unlimited) {
      await authorize(c, access);
      return next();
    }
    try {
      await authorize(c, access);
    } catch (err) {
      // A refused request (bad token, wrong role) is counted against its address too.
      if (err instanceof DomainError && (err.kind === "unauthorized" || err.kind === "forbidden")) await countRefused(c);
      throw err;
    }
    return enforceRateLimit(c, next);
  };
  const middleware: MiddlewareHandler<AppEnv>[] = [guard];
  if (opts.idempotent) middleware.push(idempotent());
  const own = config.middleware ? (Array.isArray(config.middleware) ? config.middleware : [config.middleware]) : [];
  const request = config.request;
  if (request) {
    for (const schema of [request.query, request.params, request.headers, request.cookies]) syncFirst(schema);
    for (const media of Object.values(request.body?.content ?? {})) syncFirst((media as { schema?: unknown } | undefined)?.schema);
  }
  return createRoute({
    ...config,
    security: opts.access === "public" ? [] : [{ bearerAuth: [] }],
    middleware: [...middleware, ...own] as never,
    "x-access": opts.access,
  }) as R;
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
