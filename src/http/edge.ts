import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import { requestLineWriter } from "../observability/request-line.ts";
import type { AppEnv, Platform } from "./env.ts";
import type { RequestScope } from "./problem.ts";

/**
 * The request edge: what every answer carries (request and correlation ids, security headers)
 * and the one log line per request. It runs on every request, so it does only that: no child
 * logger unless something logs, no per-request closures, headers from fixed lists.
 */

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * SECURITY_HEADERS are the headers `hono/secure-headers` sets with its defaults (and no CSP: the
 * docs page loads its own scripts), as one fixed list instead of a middleware that rebuilds it.
 * tests/platform/edge.int.test.ts checks them against hono's middleware.
 */
export const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ["cross-origin-resource-policy", "same-origin"],
  ["cross-origin-opener-policy", "same-origin"],
  ["origin-agent-cluster", "?1"],
  ["referrer-policy", "no-referrer"],
  ["strict-transport-security", "max-age=15552000; includeSubDomains"],
  ["x-content-type-options", "nosniff"],
  ["x-dns-prefetch-control", "off"],
  ["x-download-options", "noopen"],
  ["x-frame-options", "SAMEORIGIN"],
  ["x-permitted-cross-domain-policies", "none"],
  ["x-xss-protection", "0"],
];

/** requestIds takes valid ids from the request, else makes a request id and correlates on it. */
export function requestIds(headers: Headers): [requestId: string, correlationId: string] {
  const incoming = headers.get("x-request-id");
  const requestId = incoming !== null && ID.test(incoming) ? incoming : crypto.randomUUID();
  const given = headers.get("x-correlation-id");
  return [requestId, given !== null && ID.test(given) ? given : requestId];
}

function stamp(headers: Headers, requestId: string, correlationId: string): void {
  for (const [name, value] of SECURITY_HEADERS) headers.set(name, value);
  headers.set("x-request-id", requestId);
  headers.set("x-correlation-id", correlationId);
}

/**
 * edge is the first middleware: it sets the ids and the platform for the handlers, prepares the
 * headers every answer carries (so `c.json()` and problem responses are built with them), stamps
 * them on a `Response` a handler made by itself, and logs one line per request (not for
 * `/metrics`, which scrapers poll).
 */
export function edge(platform: Platform): MiddlewareHandler<AppEnv> {
  const log = platform.log;
  // The request line's keys are fixed and none is redacted: it is written without pino's general
  // path (same output; the level still follows `log`).
  const requestLine = requestLineWriter(log);
  return async (c, next) => {
    const [requestId, correlationId] = requestIds(c.req.raw.headers);
    c.set("requestId", requestId);
    c.set("correlationId", correlationId);
    c.set("platform", platform);
    for (const [name, value] of SECURITY_HEADERS) c.header(name, value);
    c.header("x-request-id", requestId);
    c.header("x-correlation-id", correlationId);
    const path = c.req.path;
    const logged = path !== "/metrics" && log.isLevelEnabled("info");
    const started = logged ? performance.now() : 0;
    await next();
    // A handler that returned `new Response(...)` (an idempotent replay) bypassed the prepared headers.
    if (c.res.headers.get("x-request-id") === null) stamp(c.res.headers, requestId, correlationId);
    if (logged) requestLine({ requestId, correlationId, method: c.req.method, path, status: c.res.status, ms: Math.round(performance.now() - started) });
  };
}

const HEALTH_BODY = JSON.stringify({ status: "ok" });
const HEALTH_HEADERS = new Headers([...SECURITY_HEADERS.map(([k, v]) => [k, v]), ["content-type", "application/json"]]);

/**
 * health answers the liveness probe. Registered ahead of `edge`, it is the whole request: the
 * same ids and headers as any answer, built from one prepared header set, and no log line
 * (orchestrators poll it every few seconds).
 */
export function health(c: Context<AppEnv>): Response {
  return healthResponse(c.req.raw.headers);
}

/**
 * healthResponse is `health` for a bare request's headers: the server also registers it as a
 * native `Bun.serve` route for GET and HEAD /health (see `src/server.ts`), so probes skip the
 * Hono router; other methods still reach the app (and its 405).
 */
export function healthResponse(headers: Headers): Response {
  const [requestId, correlationId] = requestIds(headers);
  const res = new Response(HEALTH_BODY, { headers: HEALTH_HEADERS });
  res.headers.set("x-request-id", requestId);
  res.headers.set("x-correlation-id", correlationId);
  return res;
}

/**
 * requestLog is the logger for this request: a child of the application's logger carrying
 * `requestId` and `correlationId`, made the first time something is logged.
 *
 * @example requestLog(c).warn({ orderId }, "payment provider slow");
 */
export function requestLog(c: Pick<RequestScope, "get" | "set">): Logger {
  let log = c.get("log");
  if (!log) {
    const platform = c.get("platform");
    if (!platform) throw new Error("requestLog called outside the HTTP edge");
    log = platform.log.child({ requestId: c.get("requestId"), correlationId: c.get("correlationId") });
    c.set("log", log);
  }
  return log;
}
