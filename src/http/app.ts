import { createHash, timingSafeEqual } from "node:crypto";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import type { Logger } from "pino";
import { runWithEventContext } from "../../outbox/context.ts";
import { UnauthorizedError } from "../errors.ts";
import { docsPage } from "./docs.ts";
import { edge, health } from "./edge.ts";
import type { AppEnv, IdempotencyStore, Platform, RateLimiter, TokenVerifier } from "./env.ts";
import { type NativeHandler, nativeHandlers } from "./native-route.ts";
import { handleError, problemResponse } from "./problem.ts";
import { createMemoryRateLimiter } from "./rate-limit.ts";
import { validationHook } from "./validation.ts";

/** HttpDeps are what the HTTP edge needs from the composition root. */
export interface HttpDeps {
  log: Logger;
  verifyToken: TokenVerifier;
  rateLimiter: RateLimiter;
  /** Sign-in attempts per account and per address; default: in memory, 10 per 15 minutes. */
  signInLimiter?: RateLimiter;
  idempotencyStore: IdempotencyStore;
  bodyLimitBytes: number;
  corsOrigins: string[];
  /** Believe `x-forwarded-for` (only behind our own proxy). */
  trustProxy?: boolean;
  /** False on a worker-only replica: then only /health, /ready and /metrics are served. */
  servesApi: boolean;
  /** Readiness probe: resolves to a list of failed checks (empty when ready). */
  readiness: () => Promise<string[]>;
  /** Prometheus text exposition, when metrics are on. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** When set, `/metrics` needs `Authorization: Bearer <metricsToken>` (compared in constant time). */
  metricsToken?: string | undefined;
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** newRouter returns a sub-app that validates with the shared hook; modules mount their routes on it. */
export const newRouter = () => new OpenAPIHono<AppEnv>({ defaultHook: validationHook as never });

/**
 * createHttpApp builds the Hono app: middleware, probes, `/api/v1` routers, OpenAPI and docs.
 * `mount` receives the `/api/v1` router to add module routes to.
 *
 * What runs per request: `/health` is answered before any middleware (ids and security headers
 * included); every other request goes through `edge` (ids, headers, the log line); `/api/*`
 * adds CORS when configured, the body checks on requests with a body, and the event context
 * (so events appended while handling carry the correlation id and the caller as actor); each
 * route adds its own access check, rate limit and idempotency (see `defineRoute`). Routes declared
 * with `nativeGet` are also served by the server outside Hono, with the same answers (see
 * `native-route.ts` and `nativeRoutes`).
 */
export function createHttpApp(deps: HttpDeps, mount: (api: OpenAPIHono<AppEnv>) => void): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook as never });
  const platform: Platform = {
    log: deps.log,
    verifyToken: deps.verifyToken,
    rateLimiter: deps.rateLimiter,
    signInLimiter: deps.signInLimiter ?? createMemoryRateLimiter({ max: 10, windowSeconds: 900, prefix: "signin:" }),
    idempotencyStore: deps.idempotencyStore,
    trustProxy: deps.trustProxy ?? false,
  };

  app.get("/health", health);
  app.use(edge(platform));
  if (deps.corsOrigins.length) {
    app.use(
      "/api/*",
      cors({
        origin: deps.corsOrigins,
        exposeHeaders: ["x-request-id", "x-correlation-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
      }),
    );
  }
  const limit = bodyLimit({
    maxSize: deps.bodyLimitBytes,
    onError: (c) => problemResponse(c as Context<AppEnv>, 413, "REQUEST.TOO_LARGE", `The request body exceeds ${deps.bodyLimitBytes} bytes.`),
  });
  app.use("/api/*", (c, next) => {
    const handle = () => runWithEventContext({ correlationId: c.get("correlationId") }, next);
    // A 415 comes back through the body limit's `next` as a Response; Hono takes it as the answer.
    if (BODY_METHODS.has(c.req.method)) return limit(c, (() => checkContentType(c, handle)) as () => Promise<void>);
    return c.req.raw.body === null ? handle() : limit(c, handle);
  });

  app.get("/ready", async (c) => {
    const failed = await deps.readiness();
    return failed.length ? c.json({ status: "unavailable", failed }, 503) : c.json({ status: "ready" });
  });
  if (deps.metrics) {
    const metrics = deps.metrics;
    const allowed = scraperCheck(deps.metricsToken);
    app.get("/metrics", async (c) => {
      if (!allowed(c.req.header("authorization"))) {
        c.header("www-authenticate", 'Bearer realm="metrics"');
        throw new UnauthorizedError("/metrics needs the bearer token set in METRICS_TOKEN", "AUTH.METRICS_TOKEN");
      }
      const { contentType, body } = await metrics();
      return c.body(body, 200, { "content-type": contentType });
    });
  }

  if (deps.servesApi) {
    const api = new OpenAPIHono<AppEnv>({ defaultHook: validationHook as never });
    mount(api);
    app.route("/api/v1", api);
    // With CORS configured every /api answer goes through the app, which adds its headers.
    if (!deps.corsOrigins.length)
      native.set(
        app,
        nativeHandlers(platform, "/api/v1", api, (req, server) => app.fetch(req, server)),
      );
  }

  if (deps.servesApi) {
    app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });
    app.doc31("/openapi.json", {
      openapi: "3.1.0",
      info: {
        title: "Eventful monolith API",
        version: "1.0.0",
        description: "Social network, shop and analytics modules over a transactional outbox. Errors are RFC 9457 problem+json.",
      },
    });
    app.route("/docs", docsPage());
  }

  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length) {
      c.header("allow", allowed.join(", "));
      return problemResponse(c, 405, "HTTP.METHOD_NOT_ALLOWED", `${c.req.method} is not allowed here; use ${allowed.join(", ")}.`, {
        headers: { allow: allowed.join(", ") },
      });
    }
    return problemResponse(c, 404, "HTTP.NOT_FOUND", `No route for ${c.req.method} ${c.req.path}.`);
  });
  app.onError(handleError);
  return app;
}

const native = new WeakMap<object, Record<string, { GET: NativeHandler }>>();

/**
 * nativeRoutes returns the `Bun.serve` route table of the app's routes declared with `nativeGet`
 * (none when CORS is configured or the app serves no API), keyed by full path, for the server to
 * register beside its `fetch` (see `src/http/native-route.ts`).
 */
export function nativeRoutes(app: OpenAPIHono<AppEnv>): Record<string, { GET: NativeHandler }> {
  return native.get(app) ?? {};
}

/** checkContentType answers 415 to a body sent as anything but JSON. */
async function checkContentType(c: Context<AppEnv>, next: () => Promise<void>): Promise<Response | undefined> {
  const type = c.req.header("content-type")?.split(";")[0]?.trim() ?? "";
  // A streamed body may come with neither content-length nor transfer-encoding (e.g. in process).
  const hasBody =
    c.req.header("content-length") !== "0" &&
    (c.req.raw.body !== null || c.req.header("content-length") !== undefined || c.req.header("transfer-encoding") !== undefined);
  if (hasBody && !JSON_TYPE.test(type)) {
    return problemResponse(c, 415, "REQUEST.UNSUPPORTED_MEDIA_TYPE", `Send the body as application/json, not ${type || "no content type"}.`);
  }
  await next();
}

const routeTables = new WeakMap<object, { method: string; re: RegExp }[]>();

// Hono answers 404 for a known path with an unknown method; we derive 405 from its route list.
function allowedMethods(app: OpenAPIHono<AppEnv>, path: string): string[] {
  let routeTable = routeTables.get(app);
  if (!routeTable) {
    routeTable = app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => ({
        method: r.method,
        re: new RegExp(
          `^${r.path
            .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
            .replace(/\/:[^/]+/g, "/[^/]+")
            .replace(/\*/g, ".*")}/?$`,
        ),
      }));
    routeTables.set(app, routeTable);
  }
  const methods = new Set(routeTable.filter((r) => r.re.test(path)).map((r) => r.method));
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods].sort();
}

/**
 * scraperCheck returns whether an Authorization header may read `/metrics`: anyone when no token
 * is configured (development; keep the port private), else only `Bearer <token>`. The token is
 * compared as digests, in constant time and whatever its length.
 */
function scraperCheck(token: string | undefined): (header: string | undefined) => boolean {
  if (token === undefined) return () => true;
  const digest = (v: string) => createHash("sha256").update(v).digest();
  const expected = digest(token);
  return (header) => {
    const m = header === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(header);
    return m !== null && timingSafeEqual(digest(m[1]!), expected);
  };
}
