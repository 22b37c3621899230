import type { OpenAPIHono, RouteConfig } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getPath, getQueryParams } from "hono/utils/url";
import type { z } from "zod";
import { requestLineWriter } from "../observability/request-line.ts";
import { requestIds, SECURITY_HEADERS } from "./edge.ts";
import type { AppEnv, AuthUser, Platform, RateLimitResult } from "./env.ts";
import { errorResponse, type RequestScope } from "./problem.ts";
import { clientAddress } from "./rate-limit.ts";
import { admit, type RouteOptions, routeOptions } from "./route.ts";
import { validationHook } from "./validation.ts";

/**
 * Natively served routes: a hot read declared with `nativeGet` is mounted on the Hono router as
 * usual (so `app.request`, the OpenAPI document and every other way in stay as they are) and is
 * also registered by the server in `Bun.serve`'s own `routes` table (see `src/server.ts`), where
 * a GET is answered without Hono's router, context and middleware chain, by the same platform
 * code giving the same answers:
 *
 * - the ids (`requestIds`), the security headers (one prepared `Headers`, as `/health` does) and
 *   the one request line (`requestLineWriter`), as `edge` gives every answer;
 * - the route's access rule and rate limits (`admit`, which `defineRoute`'s guard runs: the same
 *   token verifier with its caches, the same limiter objects, the same keys and headers);
 * - the query validated by the route's own schema, failures through the shared `validationHook`;
 * - every failure answered by `errorResponse`, what `app.onError` answers (problem+json, the
 *   headers prepared so far, the 500 logged on the request's logger).
 *
 * Anything else goes to the app (`app.fetch`): another method (HEAD, OPTIONS, ...), a GET with a
 * body (the app's body checks), and every request when CORS is configured (the app adds its
 * headers). A native route runs without the event context the `/api/*` middleware opens (its
 * `AsyncLocalStorage.run` costs about 2 µs a request): that context only stamps the events a
 * request appends, so `nativeGet` is for reads that append none. Only routes made by `defineRoute`
 * with no idempotency, no middleware of their own, no path parameters and no request parts but a
 * query can be served so; `nativeGet` refuses others when the router is built.
 * tests/platform/native-route.int.test.ts compares the two paths answer for answer.
 */

/** NativeAnswer is a natively served route's 200: its body as it is sent, and its content type. */
export interface NativeAnswer {
  body: string | Uint8Array;
  contentType: string;
}

/** NativeInput is what a natively served route's answer is computed from: the caller and the validated query. */
export interface NativeInput<Q> {
  /** The verified caller; undefined only on a public route called without a token. */
  readonly user: AuthUser | undefined;
  readonly query: Q;
}

type QueryOf<R> = R extends { request: { query: infer S extends z.ZodType } } ? z.output<S> : Record<string, never>;

interface NativeSpec {
  path: string;
  options: RouteOptions;
  query: z.ZodType | undefined;
  answer: (input: NativeInput<unknown>) => Promise<NativeAnswer>;
}

const declared = new WeakMap<object, NativeSpec[]>();

/**
 * nativeGet mounts a GET route made by `defineRoute` on `api` with `answer` as its handler, and
 * marks it to be served natively as well (see above): `answer` must depend only on its input,
 * append no events and answer 200 (failures are thrown, as domain errors).
 *
 * @example nativeGet(api, defineRoute({ access: "user" }, { method: "get", path: "/timeline", request: { query: PageQuery }, responses }), async ({ user, query }) => ({ body: await page(user, query), contentType: "application/json" }))
 */
export function nativeGet<R extends RouteConfig>(api: OpenAPIHono<AppEnv>, route: R, answer: (input: NativeInput<QueryOf<R>>) => Promise<NativeAnswer>): void {
  const options = routeOptions(route);
  const request = route.request;
  const why = !options
    ? "it is not made by defineRoute"
    : route.method !== "get"
      ? "it is not a GET"
      : options.idempotent || options.ownMiddleware
        ? "it has middleware of its own"
        : route.path.includes("{")
          ? "it has path parameters"
          : request && (request.params || request.headers || request.cookies || request.body)
            ? "it validates more than its query"
            : undefined;
  if (why !== undefined) throw new Error(`nativeGet ${route.path}: ${why}`);
  const run = answer as NativeSpec["answer"];
  api.openapi(route, (async (c: Context<AppEnv>) => {
    const a = await run({ user: c.get("user"), query: request?.query ? (c.req as unknown as { valid(target: "query"): unknown }).valid("query") : {} });
    return c.body(a.body as string, 200, { "content-type": a.contentType });
  }) as never);
  let list = declared.get(api);
  if (!list) declared.set(api, (list = []));
  list.push({ path: route.path, options: options!, query: request?.query as z.ZodType | undefined, answer: run });
}

/** NativeHandler answers one request in `Bun.serve`'s `routes` table (`server` is the Bun server). */
export type NativeHandler = (req: Request, server: unknown) => Response | Promise<Response>;

/**
 * nativeHandlers builds the `Bun.serve` route handlers of the routes `nativeGet` marked on `api`,
 * mounted at `prefix`, keyed by their full path; `fallback` (the app's `fetch`) answers what they
 * do not serve themselves.
 */
export function nativeHandlers(
  platform: Platform,
  prefix: string,
  api: OpenAPIHono<AppEnv>,
  fallback: (req: Request, server: unknown) => Response | Promise<Response>,
): Record<string, { GET: NativeHandler }> {
  const routes: Record<string, { GET: NativeHandler }> = {};
  for (const spec of declared.get(api) ?? []) routes[`${prefix}${spec.path}`] = { GET: nativeHandler(platform, spec, fallback) };
  return routes;
}

// The security headers every answer carries, prepared once, and with each content type answered.
const PREPARED = new Headers(SECURITY_HEADERS.map(([k, v]) => [k, v]));
const preparedByType = new Map<string, Headers>();

function preparedFor(contentType: string): Headers {
  let headers = preparedByType.get(contentType);
  if (!headers) {
    headers = new Headers(PREPARED);
    headers.set("content-type", contentType);
    preparedByType.set(contentType, headers);
  }
  return headers;
}

/** stamp sets what is the request's own: its ids, and the rate limit's headers once it was counted (as the edge and the guard do). */
function stamp(headers: Headers, requestId: string, correlationId: string, limit: RateLimitResult | undefined): void {
  headers.set("x-request-id", requestId);
  headers.set("x-correlation-id", correlationId);
  if (limit) {
    headers.set("ratelimit-limit", String(limit.limit));
    headers.set("ratelimit-remaining", String(limit.remaining));
    headers.set("ratelimit-reset", String(limit.resetSeconds));
  }
}

function nativeHandler(platform: Platform, spec: NativeSpec, fallback: (req: Request, server: unknown) => Response | Promise<Response>): NativeHandler {
  const log = platform.log;
  const requestLine = requestLineWriter(log);
  const { options, query, answer } = spec;
  return async (req, server) => {
    if (req.method !== "GET" || req.body !== null) return fallback(req, server);
    const [requestId, correlationId] = requestIds(req.headers);
    const path = getPath(req);
    const logged = log.isLevelEnabled("info");
    const started = logged ? performance.now() : 0;
    let user: AuthUser | undefined;
    let limit: RateLimitResult | undefined;
    let res: Response;
    try {
      const admitted = await admit(platform, options, req.headers.get("authorization") ?? undefined, () => clientAddress(req, server, platform.trustProxy));
      user = admitted.user;
      limit = admitted.limit;
      const a = await answer({ user, query: query ? await validQuery(query, req.url) : {} });
      // Made from one prepared set (security headers and content type), then the request's own:
      // the cheapest way to a Response with these headers (an array or record costs three times as much).
      res = new Response(a.body, { status: 200, headers: preparedFor(a.contentType) });
      stamp(res.headers, requestId, correlationId, limit);
    } catch (err) {
      const headers = new Headers(PREPARED);
      stamp(headers, requestId, correlationId, limit);
      res = errorResponse(err instanceof Error ? err : new Error(String(err)), scope(req, path, headers, { requestId, correlationId, platform, user }));
    }
    if (logged) requestLine({ requestId, correlationId, method: req.method, path, status: res.status, ms: Math.round(performance.now() - started) });
    return res;
  };
}

/** validQuery is what the route's query validator hands its handler: Hono's reading of the query string, parsed by the schema, failures through the shared hook. */
async function validQuery(schema: z.ZodType, url: string): Promise<unknown> {
  // No query string (the common case) reads as no parameters, as getQueryParams finds.
  const value =
    url.indexOf("?", 8) === -1
      ? {}
      : Object.fromEntries(Object.entries(getQueryParams(url) as Record<string, string[]>).map(([k, v]) => (v.length === 1 ? [k, v[0]] : [k, v])));
  const result = await schema.safeParseAsync(value);
  validationHook({ data: value, ...result, target: "query" } as never, undefined as never);
  return result.data;
}

/** scope is the little of a request that answering with a problem reads (Hono's `Context` elsewhere). */
function scope(req: Request, path: string, headers: Headers, vars: AppEnv["Variables"]): RequestScope {
  return {
    req: { path, raw: req },
    res: { headers },
    get: (key) => vars[key],
    set: (key, value) => {
      vars[key] = value;
    },
  };
}
