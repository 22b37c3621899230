import { sql } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import type { Db } from "../db/client.ts";
import { prepared } from "../db/prepared.ts";
import { DomainError, ValidationError } from "../errors.ts";
import type { AppEnv, IdempotencyStore } from "./env.ts";
import { clientIp } from "./rate-limit.ts";

const KEY = /^[A-Za-z0-9._:-]{1,255}$/;
const KEPT_HEADERS = ["content-type", "location"];
const IN_PROGRESS_TIMEOUT_SECONDS = 60;

// The store's statements run on every creating POST that carries a key: built once (see prepared).
const reserveKey = prepared(
  "idempotency_reserve",
  ["scope", "key", "hash", "ttl", "stale"],
  (_, $) => sql`
  insert into outbox.idempotency_keys (scope, key, request_hash, expires_at)
  values (${$.scope}, ${$.key}, ${$.hash}, now() + make_interval(secs => ${$.ttl}))
  on conflict (scope, key) do update
    set request_hash = excluded.request_hash, status = null, headers = null, body = null,
        created_at = now(), expires_at = excluded.expires_at
    where outbox.idempotency_keys.expires_at < now()
       -- A reservation whose request died (crash, lost connection) frees up after a while.
       or (outbox.idempotency_keys.status is null and outbox.idempotency_keys.created_at < now() - make_interval(secs => ${$.stale}))
  returning 1`,
);
const findKey = prepared(
  "idempotency_find",
  ["scope", "key"],
  (_, $) => sql`
  select request_hash, status, headers, body from outbox.idempotency_keys where scope = ${$.scope} and key = ${$.key}`,
).returns<{
  request_hash: string;
  status: number | null;
  headers: Record<string, string> | null;
  body: string | null;
}>();
const completeKey = prepared(
  "idempotency_complete",
  ["scope", "key", "status", "headers", "body"],
  (_, $) => sql`
  update outbox.idempotency_keys set status = ${$.status}, headers = ${$.headers}::jsonb, body = ${$.body}
  where scope = ${$.scope} and key = ${$.key}`,
);
const abandonKey = prepared(
  "idempotency_abandon",
  ["scope", "key"],
  (_, $) => sql`
  delete from outbox.idempotency_keys where scope = ${$.scope} and key = ${$.key} and status is null`,
);

/**
 * createPgIdempotencyStore keeps keys in `outbox.idempotency_keys`. The reservation is an
 * insert, so two concurrent requests with one key cannot both run.
 */
export function createPgIdempotencyStore(db: Db, ttlSeconds: number): IdempotencyStore {
  return {
    async begin(scope, key, requestHash) {
      const inserted = await reserveKey.execute(db, { scope, key, hash: requestHash, ttl: ttlSeconds, stale: IN_PROGRESS_TIMEOUT_SECONDS });
      if (inserted.length) return { state: "new" };
      const [row] = await findKey.execute(db, { scope, key });
      if (!row) return { state: "new" };
      if (row.request_hash !== requestHash) return { state: "mismatch" };
      if (row.status === null) return { state: "in_progress" };
      return { state: "done", response: { status: row.status, headers: row.headers ?? {}, body: row.body ?? "" } };
    },
    async complete(scope, key, response) {
      await completeKey.execute(db, { scope, key, status: response.status, headers: JSON.stringify(response.headers), body: response.body });
    },
    async abandon(scope, key) {
      await abandonKey.execute(db, { scope, key });
    },
  };
}

/**
 * KEPT_STATUSES are the answers of an operation that ran: its success, or a domain outcome (not
 * found, conflict, unprocessable). A 400 (the request was invalid: nothing ran), a refusal, a
 * 429 or a 5xx is not kept, so the corrected or later retry with the same key runs, as payment
 * APIs do.
 */
const KEPT_STATUSES = (status: number) => (status >= 200 && status < 400) || status === 404 || status === 409 || status === 410 || status === 422;

/** canonicalJson writes a parsed JSON value with sorted keys: one text per value, whatever the whitespace or key order sent. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** requestHash identifies a request body: as parsed JSON when it is JSON, else its bytes. */
export function requestHash(body: ArrayBuffer): string {
  const hasher = new Bun.CryptoHasher("sha256");
  try {
    hasher.update(`json:${canonicalJson(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)))}`);
  } catch {
    hasher.update("bytes:").update(body);
  }
  return hasher.digest("hex");
}

/**
 * idempotent honours `Idempotency-Key` on a creating POST: the first answer of an operation that
 * ran (see KEPT_STATUSES) is kept for the key's lifetime per caller and replayed unchanged (with
 * `idempotent-replayed: true`); the same key with another body (compared as parsed JSON) is a
 * 422; a retry while the first is running is a 409. Other answers release the key.
 */
export function idempotent(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header("idempotency-key");
    if (key === undefined) return next();
    if (!KEY.test(key))
      throw new ValidationError("Idempotency-Key must be 1-255 characters of A-Z a-z 0-9 . _ : -", [{ path: "header.idempotency-key", message: "invalid" }]);
    const user = c.get("user");
    const scope = `${user ? `u:${user.id}` : `ip:${clientIp(c)}`} ${c.req.method} ${c.req.path}`;
    const body = await c.req.raw.clone().arrayBuffer();
    const hash = requestHash(body);
    const store = c.get("platform").idempotencyStore;
    const state = await store.begin(scope, key, hash);
    if (state.state === "mismatch")
      throw new DomainError("IDEMPOTENCY.KEY_REUSED", "unprocessable", "This Idempotency-Key was already used with a different request body.");
    if (state.state === "in_progress")
      throw new DomainError("IDEMPOTENCY.IN_PROGRESS", "conflict", "A request with this Idempotency-Key is still being processed; retry shortly.");
    if (state.state === "done") {
      return new Response(state.response.body, { status: state.response.status, headers: { ...state.response.headers, "idempotent-replayed": "true" } });
    }
    try {
      await next();
    } catch (err) {
      await store.abandon(scope, key);
      throw err;
    }
    const res = c.res;
    if (!KEPT_STATUSES(res.status)) {
      await store.abandon(scope, key);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of KEPT_HEADERS) {
      const v = res.headers.get(h);
      if (v) headers[h] = v;
    }
    await store.complete(scope, key, { status: res.status, headers, body: await res.clone().text() });
  };
}
