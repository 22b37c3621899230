import { type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { afterCommit, type Executor, type Tx, writeBehind } from "../src/db/client.ts";
import { preparedQuery } from "../src/db/driver-internals.ts";
import type { AnyEventDefinition, EnvelopeOf, NewEvent } from "../src/events/definition.ts";
import type { EventRegistry } from "../src/events/registry.ts";
import { currentEventContext } from "./context.ts";
import { noteAppend } from "./durability.ts";
import { type EventEnvelope, newEventId } from "./envelope.ts";
import { StreamVersionConflictError, UnexpectedStreamEventError } from "./errors.ts";
import { assertMayAppend } from "./horizon.ts";
import type { Appender, AppendToStreamOptions } from "./types.ts";

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

/** EVENT_COLUMNS_TEXT is the select list that `toEnvelope` reads, as text for fixed statements. */
export const EVENT_COLUMNS_TEXT =
  "position::text as position, transaction_id::text as transaction_id, id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version";

/** EVENT_COLUMNS is the select list that `toEnvelope` reads. */
export const EVENT_COLUMNS = sql.raw(EVENT_COLUMNS_TEXT);

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

const dialect = new PgDialect();
const noop = () => {};

/**
 * executePrepared runs `query` in `tx` the way drizzle runs a `.prepare(name)`d query: postgres.js
 * then keeps it as a server-side prepared statement per connection, so each call is one round
 * trip (`tx.execute` sends every parameterised statement twice: describe, then execute) and the
 * server parses it once. Errors are wrapped exactly as `tx.execute` wraps them. Only for
 * statements whose text does not depend on the data (it is the cache key), and whose best plan
 * does not depend on the values (after five runs Postgres may switch to a generic plan).
 */
export function executePrepared<T = Record<string, unknown>>(db: Executor, query: SQL, name: string): Promise<T[]> {
  return executePreparedText<T>(db, dialect.sqlToQuery(query), name);
}

/**
 * renderQuery renders a query to `$n` text and its parameters once, for executePreparedText: a
 * statement run again and again with the same values (a worker's poll) then skips the query
 * builder on every run.
 */
export function renderQuery(query: SQL): { sql: string; params: unknown[] } {
  return dialect.sqlToQuery(query);
}

/** executePreparedText is executePrepared for a statement already rendered to `$n` text and its parameters. */
export function executePreparedText<T>(db: Executor, query: { sql: string; params: unknown[] }, name: string): Promise<T[]> {
  return preparedQuery<T>(db, query, name);
}

// The append statements are fixed text, so they are written out once rather than rebuilt by the
// query builder on every append. Times and data go as text and are cast by Postgres (drizzle
// swaps postgres.js's timestamptz[] serializer for a pass-through).
const INSERT_EVENTS = "insert into outbox.events (id, source, type, subject, time, data, correlation_id, causation_id, actor_id, stream_id, stream_version)";
// Both return the transaction's id, which the wake-up after commit passes on (see Wakeup.appended).
const INSERT_ONE = `${INSERT_EVENTS}
  values ($1::uuid, $2::text, $3::text, $4::text, $5::text::timestamptz, $6::text::jsonb, $7::text, $8::uuid, $9::text, $10::text, $11::int)
  returning transaction_id::text as xid`;
const INSERT_MANY = `${INSERT_EVENTS}
  select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]::timestamptz[], $6::text[]::jsonb[], $7::text[],
                       $8::uuid[], $9::text[], $10::text[], $11::int[])
  returning transaction_id::text as xid`;

/**
 * createAppender returns the outbox's write side. Events are validated against the registry,
 * stamped with correlation/causation/actor from the ambient context, and written with a single
 * insert (`unnest` for several, plain values for one); `onAppended` fires after the surrounding
 * transaction commits, with that transaction's id.
 */
export function createAppender(registry: EventRegistry, onAppended: (events: EventEnvelope[], xid?: string) => void): Appender {
  function build(events: readonly NewEvent[]): EventEnvelope[] {
    const ctx = currentEventContext();
    const correlationid = ctx?.correlationId ?? newEventId();
    const now = new Date().toISOString();
    return events.map((e) => {
      // Parsed with the registered schema, not the one the event carries: the registry is the
      // contract, and this also catches a definition no module lists in its events.
      const def = registry.get(e.type);
      const data = registry.parse(e.type, e.data);
      const cause = e.causedBy;
      const env: EventEnvelope = {
        specversion: "1.0",
        id: e.id ?? newEventId(),
        source: def!.source,
        type: e.type,
        subject: e.subject,
        time: e.time ?? now,
        datacontenttype: "application/json",
        data,
        correlationid: cause?.correlationid ?? correlationid,
      };
      const causationid = cause ? cause.id : ctx?.causationId;
      const actorid = cause ? cause.actorid : ctx?.actorId;
      if (causationid) env.causationid = causationid;
      if (actorid) env.actorid = actorid;
      return env;
    });
  }

  /**
   * insert writes the events. For `append` the insert is write-behind: it is sent now and its
   * reply is checked at commit, so it costs no round trip of its own (the next statement or the
   * COMMIT travels with it); a failure fails the transaction with the insert's error.
   * `appendToStream` waits, so a version conflict is thrown where the caller appends.
   */
  async function insert(
    tx: Tx,
    envs: EventEnvelope[],
    streamId: string | null,
    firstVersion: number | null,
    behind = false,
    onError?: (err: unknown) => never,
    // The first `inStream` events go to the stream; the rest (appended alongside) to none.
    inStream = envs.length,
  ) {
    if (envs.length === 0) return;
    assertMayAppend(tx);
    // onError translates a failure where it happens, so a write-behind statement fails the
    // transaction with the translated error.
    let xid: string | undefined;
    const send = (q: Promise<{ xid: string }[]>) => {
      q.then((rows) => {
        xid = rows[0]?.xid;
      }, noop);
      const statement = onError ? q.catch(onError) : q;
      return behind ? writeBehind(tx, statement) : statement;
    };
    const n = envs.length;
    if (n === 1) {
      // The common single event: plain values are cheaper than eleven one-element arrays, on
      // both sides of the wire. Same columns, same casts as the batch form.
      const e = envs[0]!;
      const params = [
        e.id,
        e.source,
        e.type,
        e.subject,
        e.time,
        JSON.stringify(e.data),
        e.correlationid,
        e.causationid ?? null,
        e.actorid ?? null,
        streamId,
        firstVersion,
      ];
      await send(executePreparedText<{ xid: string }>(tx, { sql: INSERT_ONE, params }, "outbox_append_one"));
    } else {
      const col = <T>(f: (e: EventEnvelope, i: number) => T) => envs.map(f);
      const params = [
        col((e) => e.id),
        col((e) => e.source),
        col((e) => e.type),
        col((e) => e.subject),
        col((e) => e.time),
        col((e) => JSON.stringify(e.data)),
        col((e) => e.correlationid),
        col((e) => e.causationid ?? null),
        col((e) => e.actorid ?? null),
        envs.map((_, i) => (i < inStream ? streamId : null)),
        firstVersion === null ? new Array(n).fill(null) : envs.map((_, i) => (i < inStream ? firstVersion + i : null)),
      ];
      await send(executePreparedText<{ xid: string }>(tx, { sql: INSERT_MANY, params }, "outbox_append"));
    }
    noteAppend(tx);
    // By the time the commit is through, the insert has answered (the commit waits for it).
    afterCommit(() => onAppended(envs, xid));
  }

  return {
    async append<E extends NewEvent>(tx: Tx, events: readonly E[]) {
      const envs = build(events);
      await insert(tx, envs, null, null, true);
      // build parsed each event's data with its schema, so the envelopes have the typed shape.
      return envs as EnvelopeOf<E["definition"]>[];
    },

    async appendToStream<E extends NewEvent>(tx: Tx, streamId: string, expectedVersion: number, events: readonly E[], options: AppendToStreamOptions = {}) {
      if (!options.versionRead) {
        const [row] = await executePrepared<{ version: number }>(
          tx,
          sql`select coalesce(max(stream_version), 0)::int as version from outbox.events where stream_id = ${streamId}`,
          "outbox_stream_version",
        );
        if ((row?.version ?? 0) !== expectedVersion) throw new StreamVersionConflictError(streamId, expectedVersion);
      }
      const envs = build(events);
      const alongside = options.alongside && envs.length > 0 ? build(options.alongside(envs)) : [];
      // Two writers passed the version check together (or one appended after the caller read the
      // version): the unique index lets only one win.
      const conflict = (err: unknown): never => {
        if (isUniqueViolation(err, "events_stream_version_key")) throw new StreamVersionConflictError(streamId, expectedVersion);
        throw err;
      };
      await insert(tx, alongside.length ? [...envs, ...alongside] : envs, streamId, expectedVersion + 1, options.writeBehind ?? false, conflict, envs.length);
      return envs as EnvelopeOf<E["definition"]>[];
    },

    readStream: (async (tx: Tx, streamId: string, on?: readonly AnyEventDefinition[]) => {
      const rows = await executePreparedText<EventRow>(
        tx,
        { sql: `select ${EVENT_COLUMNS_TEXT} from outbox.events where stream_id = $1 order by stream_version`, params: [streamId] },
        "outbox_read_stream",
      );
      const expected = on && new Set(on.map((d) => d.type));
      return rows.map((r) => {
        if (expected && !expected.has(r.type)) throw new UnexpectedStreamEventError(streamId, r.stream_version ?? 0, r.type, [...expected]);
        return { ...toEnvelope(r), version: r.stream_version ?? 0 };
      });
    }) as Appender["readStream"],
  };
}

/** isUniqueViolation tells whether `err` is Postgres 23505, optionally on one constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = (err as { cause?: unknown })?.cause ?? err;
  const pg = e as { code?: string; constraint_name?: string };
  return pg?.code === "23505" && (!constraint || pg.constraint_name === constraint);
}
