import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { DomainError, type ErrorKind, type FieldError } from "../errors.ts";
import { safeError, sqlState } from "../observability/safe-error.ts";
import { requestLog } from "./edge.ts";
import type { AppEnv } from "./env.ts";

const STATUS_BY_KIND: Record<ErrorKind, ContentfulStatusCode> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  illegal_state: 409,
  unprocessable: 422,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
};

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Problem is an RFC 9457 problem details body with our extensions. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  requestId?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/**
 * RequestScope is what answering with a problem reads of a request: its path, the ids and
 * platform the edge set, the headers prepared for the answer so far, and the request itself.
 * Hono's `Context` is one; a natively routed request (see `native-route.ts`) makes a small one.
 */
export interface RequestScope {
  readonly req: { readonly path: string; readonly raw: Request };
  readonly res: { readonly headers: Headers };
  get<K extends keyof AppEnv["Variables"]>(key: K): AppEnv["Variables"][K];
  set<K extends keyof AppEnv["Variables"]>(key: K, value: AppEnv["Variables"][K]): void;
}

/** problemResponse renders a problem as `application/problem+json`. */
export function problemResponse(
  c: RequestScope,
  status: ContentfulStatusCode,
  code: string,
  detail: string,
  extra: { errors?: FieldError[]; headers?: Record<string, string>; [k: string]: unknown } = {},
): Response {
  const { headers, ...rest } = extra;
  const body: Problem = {
    type: `https://problems.eventful.dev/${code.toLowerCase().replaceAll(".", "/").replaceAll("_", "-")}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    instance: c.req.path,
    code,
    requestId: c.get("requestId"),
    ...rest,
  };
  // Headers set before the failure (CORS, rate limit, request ids) are kept; those describing a
  // response the handler had already made (its location, length, type, validators) are not: a
  // problem is always problem+json, even when the failure comes after a handler had answered.
  const kept = [...c.res.headers].filter(([name]) => !REPRESENTATION_HEADER.test(name));
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...Object.fromEntries(kept), ...headers, "content-type": "application/problem+json" },
  });
}

const REPRESENTATION_HEADER = /^(content-.*|location|etag|last-modified|expires|idempotent-replayed)$/i;

/** handleError is the single `app.onError`: domain kinds map to statuses; the rest is a 500. */
export function handleError(err: Error, c: Context<AppEnv>): Response {
  const res = errorResponse(err, c);
  // Hono merges the headers of the response already made into the one the error handler
  // returns; problemResponse has taken what is worth keeping, so drop the rest first.
  c.res = undefined as unknown as Response;
  return res;
}

/** errorResponse is the problem answer to a request that failed with `err` (what `handleError` answers). */
export function errorResponse(err: Error, c: RequestScope): Response {
  if (err instanceof DomainError) {
    const { headers, ...details } = err.details;
    return problemResponse(c, STATUS_BY_KIND[err.kind], err.code, err.message, { ...details, headers });
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code = status === 400 ? "REQUEST.MALFORMED" : status === 413 ? "REQUEST.TOO_LARGE" : `HTTP.${status}`;
    return problemResponse(c, status, code, err.message || TITLES[status] || "HTTP error");
  }
  const log = c.get("platform") ? requestLog(c) : undefined;
  // Only what safeError keeps is logged: the SQLSTATE, constraint, column, table, never the
  // statement's parameters (they hold password hashes, emails, logins). The request id is on
  // the request's logger.
  const state = sqlState(err);
  // SQLSTATE class 22 (data exception): a request value Postgres cannot store, such as a NUL
  // character or an out-of-range number that validation let through. The transaction failed, so
  // nothing was written; it is the client's input, not a server fault.
  if (state?.startsWith("22")) {
    (log ?? console).warn({ err: safeError(err), sqlState: state }, "request value rejected by the database");
    return problemResponse(c, 400, "REQUEST.UNSTORABLE_VALUE", `A value in the request cannot be stored (SQLSTATE ${state}).`);
  }
  if (isAbortedBody(err, c)) {
    // The client went away in the middle of its body: nothing to answer and nothing went wrong here.
    (log ?? console).info({ sqlState: state, reason: err.message }, "request body not received in full; the client went away");
    return problemResponse(c, 400, "REQUEST.INCOMPLETE_BODY", "The request body ended before its Content-Length.");
  }
  (log ?? console).error({ err: safeError(err) }, "unhandled error");
  return problemResponse(c, 500, "INTERNAL", "An unexpected error occurred. It has been logged; quote the requestId when reporting it.");
}

/** isAbortedBody tells a body read cut short by the client from a failure of ours. */
function isAbortedBody(err: Error, c: RequestScope): boolean {
  if (c.req.raw.signal.aborted) return true;
  const code = (err as { code?: unknown }).code;
  return err.name === "AbortError" || code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE";
}
