import type { OpenAPIHono, RouteConfig } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getQueryParams } from "hono/utils/url";
import type { z } from "zod";
import { requestLineWriter } from "../observability/request-line.ts";
import { requestIds, SECURITY_HEADERS } from "./edge.ts";
import type { AppEnv, AuthUser, Platform, RateLimitResult } from "./env.ts";
import { errorResponse, type RequestScope } from "./problem.ts";
import { clientAddress } from "./rate-limit.ts";
import { type Admitted, admit, type RouteOptions, routeOptions } from "./route.ts";
import { parseSyncFirst, validationHook } from "./validation.ts";

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

/** A native route's answer: at once when nothing it needs is awaited (a page held in process), else a promise. */
type Answering = NativeAnswer | Promise<NativeAnswer>;

interface NativeSpec {
  path: string;
  options: RouteOptions;
  query: z.ZodType | undefined;
  answer: (input: NativeInput<unknown>) => Answering;
}

const declared = new WeakMap<object, NativeSpec[]>();

/**
 * nativeGet mounts a GET route made by `defineRoute` on `api` with `answer` as its handler, and
 * marks it to be served natively as well (see above): `answer` must depend only on its input,
 * append no events and answer 200 (failures are thrown, as domain errors). It may answer at once
 * (a value, or a synchronous throw) when it awaits nothing: the natively served request is then
 * answered without a promise.
 *
 * @example nativeGet(api, defineRoute({ access: "user" }, { method: "get", path: "/timeline", request: { query: PageQuery }, responses }), ({ user, query }) => jsonAnswer(page(user, query)))
 */
export function nativeGet<R extends RouteConfig>(api: OpenAPIHono<AppEnv>, route: R, answer: (input: NativeInput<QueryOf<R>>) => Answering): void {
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

/** jsonAnswer is a native route's JSON answer of `body` (JSON text or its UTF-8 bytes), at once or when the body is. */
export function jsonAnswer(body: string | Uint8Array | Promise<string | Uint8Array>): Answering {
  return body instanceof Promise ? body.then(json) : json(body);
}

const json = (body: string | Uint8Array): NativeAnswer => ({ body, contentType: "application/json" });

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
  for (const spec of declared.get(api) ?? []) {
    const path = `${prefix}${spec.path}`;
    routes[path] = { GET: nativeHandler(platform, spec, path, fallback) };
  }
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

const NO_QUERY = Object.freeze({});

/**
 * nativeHandler serves one route. Each step (admit, the query's validation, the answer) may answer
 * at once or with a promise: while they answer at once (a known token, a count decided in process,
 * a synchronous schema, a page held here) the request is answered without a promise or an await,
 * and the first promise hands the rest to `Exchange.later`. Either way the same steps run in the
 * same order, and every failure, thrown or rejected, is answered by `errorResponse`.
 *
 * `path` is the route's full path: Bun's route table matches a request only on that exact path
 * (no trailing slash, no percent-encoding, the query string aside), so it is the request's path
 * as Hono's `getPath` would read it, without reading the URL.
 */
function nativeHandler(
  platform: Platform,
  spec: NativeSpec,
  path: string,
  fallback: (req: Request, server: unknown) => Response | Promise<Response>,
): NativeHandler {
  const log = platform.log;
  const requestLine = requestLineWriter(log);
  const { options, query, answer } = spec;
  const parseQuery = query ? (url: string) => validQuery(query, url) : () => NO_QUERY;

  /** Exchange is one natively served request on its way: its ids, what admit found, and how it is answered. */
  class Exchange {
    user: AuthUser | undefined = undefined;
    limit: RateLimitResult | undefined = undefined;
    readonly requestId: string;
    readonly correlationId: string;
    readonly started: number;
    constructor(
      readonly req: Request,
      readonly server: unknown,
    ) {
      [this.requestId, this.correlationId] = requestIds(req.headers);
      this.started = log.isLevelEnabled("info") ? performance.now() : -1;
    }
    readonly ip = () => clientAddress(this.req, this.server, platform.trustProxy);

    /** run takes the request through its steps; a step that answers with a promise hands the rest to `later`. */
    run(): Response | Promise<Response> {
      try {
        const admitted = admit(platform, options, this.req.headers.get("authorization") ?? undefined, this.ip);
        if (admitted instanceof Promise) return this.later(admitted, undefined, undefined);
        this.admitted(admitted);
        const q = parseQuery(this.req.url);
        if (q instanceof Promise) return this.later(undefined, q, undefined);
        const a = answer({ user: this.user, query: q });
        if (a instanceof Promise) return this.later(undefined, undefined, a);
        return this.done(this.ok(a));
      } catch (err) {
        return this.done(this.failed(err));
      }
    }

    /** later is `run` from the first step that answered with a promise (the others are undefined). */
    async later(admitted: Promise<Admitted> | undefined, q: Promise<unknown> | undefined, a: Promise<NativeAnswer> | undefined): Promise<Response> {
      let res: Response;
      try {
        if (admitted) {
          this.admitted(await admitted);
          q = Promise.resolve(parseQuery(this.req.url));
        }
        if (q) a = Promise.resolve(answer({ user: this.user, query: await q }));
        res = this.ok(await a!);
      } catch (err) {
        res = this.failed(err);
      }
      return this.done(res);
    }

    admitted(a: Admitted): void {
      this.user = a.user;
      this.limit = a.limit;
    }

    ok(a: NativeAnswer): Response {
      // Made from one prepared set (security headers and content type), then the request's own:
      // the cheapest way to a Response with these headers (an array or record costs three times as much).
      const res = new Response(a.body, { status: 200, headers: preparedFor(a.contentType) });
      stamp(res.headers, this.requestId, this.correlationId, this.limit);
      return res;
    }

    failed(err: unknown): Response {
      const headers = new Headers(PREPARED);
      stamp(headers, this.requestId, this.correlationId, this.limit);
      const { requestId, correlationId, user } = this;
      return errorResponse(err instanceof Error ? err : new Error(String(err)), scope(this.req, path, headers, { requestId, correlationId, platform, user }));
    }

    done(res: Response): Response {
      if (this.started >= 0) {
        requestLine({
          requestId: this.requestId,
          correlationId: this.correlationId,
          method: "GET",
          path,
          status: res.status,
          ms: Math.round(performance.now() - this.started),
        });
      }
      return res;
    }
  }

  return (req, server) => (req.method !== "GET" || req.body !== null ? fallback(req, server) : new Exchange(req, server).run());
}

/** validQuery is what the route's query validator hands its handler: Hono's reading of the query string, parsed by the schema, failures through the shared hook; at once when the schema parses synchronously. */
function validQuery(schema: z.ZodType, url: string): unknown {
  // No query string (the common case) reads as no parameters, as getQueryParams finds.
  const value =
    url.indexOf("?", 8) === -1
      ? {}
      : Object.fromEntries(Object.entries(getQueryParams(url) as Record<string, string[]>).map(([k, v]) => (v.length === 1 ? [k, v[0]] : [k, v])));
  const result = parseSyncFirst(schema, value);
  return result instanceof Promise ? result.then((r) => checked(value, r)) : checked(value, result);
}

function checked(value: unknown, result: z.ZodSafeParseResult<unknown>): unknown {
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
