import { sql } from "drizzle-orm";
import { afterCommit, type Tx } from "../src/db/client.ts";
import type { EventRegistry } from "../src/events/registry.ts";
import { currentEventContext } from "./context.ts";
import { type EventEnvelope, newEventId, type NewEvent } from "./envelope.ts";
import { StreamVersionConflictError } from "./errors.ts";
import type { Appender } from "./types.ts";

/** EventRow is how an event comes back from `outbox.events`. */
export interface EventRow {
  position: string;
  transaction_id: string;
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string | Date;
  data: unknown;
  correlation_id: string;
  causation_id: string | null;
  actor_id: string | null;
  stream_id?: string | null;
  stream_version?: number | null;
}

/** EVENT_COLUMNS is the select list that `toEnvelope` reads. */
export const EVENT_COLUMNS = sql.raw(
  "position::text as position, transaction_id::text as transaction_id, id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version",
);

/** toEnvelope turns a row into a CloudEvents envelope with `sequence` set to its position. */
export function toEnvelope(row: EventRow): EventEnvelope {
  const env: EventEnvelope = {
    specversion: "1.0",
    id: row.id,
    source: row.source,
    type: row.type,
    subject: row.subject,
    time: row.time instanceof Date ? row.time.toISOString() : new Date(row.time).toISOString(),
    datacontenttype: "application/json",
    data: row.data,
    correlationid: row.correlation_id,
    sequence: row.position,
  };
  if (row.causation_id) env.causationid = row.causation_id;
  if (row.actor_id) env.actorid = row.actor_id;
  return env;
}

/**
 * createAppender returns the outbox's write side. Events are validated against the registry,
 * stamped with correlation/causation/actor from the ambient context, and written with a single
 * `unnest` insert; `onAppended` fires after the surrounding transaction commits.
 */
export function createAppender(registry: EventRegistry, onAppended: () => void): Appender {
  function build(events: NewEvent[]): EventEnvelope[] {
    const ctx = currentEventContext();
    const correlationid = ctx?.correlationId ?? newEventId();
    const now = new Date().toISOString();
    return events.map((e) => {
      const def = registry.get(e.type);
      const data = registry.parse(e.type, e.data);
      const env: EventEnvelope = {
        specversion: "1.0",
        id: e.id ?? newEventId(),
        source: e.source ?? def!.source,
        type: e.type,
        subject: e.subject,
        time: e.time ?? now,
        datacontenttype: "application/json",
        data,
        correlationid,
      };
      if (ctx?.causationId) env.causationid = ctx.causationId;
      if (ctx?.actorId) env.actorid = ctx.actorId;
      return env;
    });
  }

  async function insert(tx: Tx, envs: EventEnvelope[], streamId: string | null, firstVersion: number | null) {
    if (envs.length === 0) return;
    const n = envs.length;
    // Times go as text[]: drizzle swaps postgres.js's timestamptz[] serializer for a pass-through.
    const col = <T>(f: (e: EventEnvelope, i: number) => T) => sql.param(envs.map(f));
    await tx.execute(sql`
      insert into outbox.events (id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version)
      select * from unnest(
        ${col((e) => e.id)}::uuid[], ${col((e) => e.source)}::text[], ${col((e) => e.type)}::text[],
        ${col((e) => e.subject)}::text[], ${col((e) => e.time)}::text[]::timestamptz[],
        ${col((e) => JSON.stringify(e.data))}::text[]::jsonb[], ${col((e) => e.correlationid)}::text[],
        ${col((e) => e.causationid ?? null)}::uuid[], ${col((e) => e.actorid ?? null)}::text[],
        ${sql.param(new Array(n).fill(streamId))}::text[],
        ${sql.param(firstVersion === null ? new Array(n).fill(null) : envs.map((_, i) => firstVersion + i))}::int[]
      )`);
    afterCommit(onAppended);
  }

  return {
    async append(tx, events) {
      const envs = build(events);
      await insert(tx, envs, null, null);
      return envs;
    },

    async appendToStream(tx, streamId, expectedVersion, events) {
      const [row] = (await tx.execute<{ version: number }>(sql`
        select coalesce(max(stream_version), 0)::int as version from outbox.events where stream_id = ${streamId}`)) as unknown as { version: number }[];
      if ((row?.version ?? 0) !== expectedVersion) throw new StreamVersionConflictError(streamId, expectedVersion);
      const envs = build(events);
      try {
        await insert(tx, envs, streamId, expectedVersion + 1);
      } catch (err) {
        // Two writers passed the version check together; the unique index lets only one win.
        if (isUniqueViolation(err, "events_stream_version_key")) throw new StreamVersionConflictError(streamId, expectedVersion);
        throw err;
      }
      return envs;
    },

    async readStream(tx, streamId) {
      const rows = (await tx.execute(sql`
        select ${EVENT_COLUMNS} from outbox.events where stream_id = ${streamId} order by stream_version`)) as unknown as EventRow[];
      return rows.map((r) => ({ ...toEnvelope(r), version: r.stream_version ?? 0 }));
    },
  };
}

/** isUniqueViolation tells whether `err` is Postgres 23505, optionally on one constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = (err as { cause?: unknown })?.cause ?? err;
  const pg = e as { code?: string; constraint_name?: string };
  return pg?.code === "23505" && (!constraint || pg.constraint_name === constraint);
}
