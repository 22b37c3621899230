import type { Executor } from "../../src/db/client.ts";
import type { DeciderEvent } from "../../src/events/decider.ts";
import { executePreparedText } from "../store.ts";
import type { EventSourced } from "./aggregate.ts";

// Each read is one prepared statement, one round trip: the usable snapshot (tagged with this
// decider's name and evolve version) and the events after it. The snapshot comes back as the
// row with no type. Versions only grow, so `order by 1` puts it first.
const SNAPSHOT = "select version, state from outbox.snapshots where stream_id = $1 and decider = $2 and evolve_version = $3";
const FROM_SNAPSHOT = `
  select version, null::text as type, state as data from s
  union all
  select stream_version, type, data from outbox.events
   where stream_id = $1 and stream_version > coalesce((select version from s), 0)`;

const LOAD = `with s as (${SNAPSHOT}) ${FROM_SNAPSHOT} order by 1`;
const LOAD_TO_VERSION = `with s as (${SNAPSHOT} and version <= $4) ${FROM_SNAPSHOT} and stream_version <= $4 order by 1`;
// State at a time: the highest version whose event was stamped at or before it. An event is
// appended after every lower version, so that prefix had been written by then even where clocks
// disagree a little.
const LOAD_TO_TIME = `
  with v as (select coalesce(max(stream_version), 0) as v from outbox.events where stream_id = $1 and time <= $4::text::timestamptz),
       s as (${SNAPSHOT} and version <= (select v from v))
  ${FROM_SNAPSHOT} and stream_version <= (select v from v) order by 1`;
const LOAD_ALL = "select stream_version as version, type, data from outbox.events where stream_id = $1 order by stream_version";
const LOAD_ALL_TO_VERSION =
  "select stream_version as version, type, data from outbox.events where stream_id = $1 and stream_version <= $2 order by stream_version";
const LOAD_ALL_TO_TIME = `
  select stream_version as version, type, data from outbox.events
   where stream_id = $1 and stream_version <= (select coalesce(max(stream_version), 0) from outbox.events where stream_id = $1 and time <= $2::text::timestamptz)
   order by stream_version`;

// Several streams in one round trip, each as LOAD reads one; rows come grouped by stream, each
// stream's snapshot (if usable) first.
const LOAD_MANY = `
  with s as (select stream_id, version, state from outbox.snapshots where stream_id = any($1::text[]) and decider = $2 and evolve_version = $3)
  select stream_id, version, null::text as type, state as data from s
  union all
  select e.stream_id, e.stream_version, e.type, e.data from outbox.events e left join s on s.stream_id = e.stream_id
   where e.stream_id = any($1::text[]) and e.stream_version > coalesce(s.version, 0)
  order by 1, 2`;
const LOAD_ALL_MANY = "select stream_id, stream_version as version, type, data from outbox.events where stream_id = any($1::text[]) order by 1, 2";

interface StreamRow {
  version: number;
  /** null for the snapshot row. */
  type: string | null;
  data: unknown;
}

/** Loaded is a stream folded to a state. */
export interface Loaded<S> {
  state: S;
  /** The stream's version the state is at (0: no events). */
  version: number;
  /** The version of the snapshot the fold started from (0: none, replayed from the start). */
  snapshotVersion: number;
}

/** StreamGapError: a stream's versions are not contiguous. The log was written around appendToStream. */
export class StreamGapError extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(`stream ${streamId} jumps from version ${expected - 1} to ${found}; event-sourced streams must be written with appendToStream`);
    this.name = "StreamGapError";
  }
}

/** Bound is where a read stops: the current end, a version, or a time. */
export type Bound = { version: number } | { time: string } | undefined;

/**
 * loadStream folds a stream's usable snapshot and the events after it (up to `bound`) into a
 * state, in one round trip. With snapshots off it replays from the first event.
 */
export async function loadStream<S, C, E extends DeciderEvent>(es: EventSourced<S, C, E>, db: Executor, streamId: string, bound?: Bound): Promise<Loaded<S>> {
  const rows = await readRows(es, db, streamId, bound);
  return foldRows(es, streamId, rows);
}

/**
 * loadStreams is loadStream for several aggregates at once, in one round trip: each id's current
 * state (the initial state at version 0 for an id with no stream). For a batch of commands
 * (a subscription's) that would otherwise read their streams one after another.
 */
export async function loadStreams<S, C, E extends DeciderEvent>(
  es: EventSourced<S, C, E>,
  db: Executor,
  ids: readonly string[],
): Promise<Map<string, Loaded<S>>> {
  const out = new Map<string, Loaded<S>>();
  if (ids.length === 0) return out;
  const streamIds = [...new Set(ids.map((id) => es.streamId(id)))];
  const rows =
    es.snapshotEvery > 0
      ? await run(db, LOAD_MANY, [streamIds, es.name, es.evolveVersion], "es_load_many")
      : await run(db, LOAD_ALL_MANY, [streamIds], "es_load_all_many");
  const byStream = new Map<string, StreamRow[]>();
  for (const row of rows as (StreamRow & { stream_id: string })[]) {
    const list = byStream.get(row.stream_id);
    if (list) list.push(row);
    else byStream.set(row.stream_id, [row]);
  }
  for (const id of ids) {
    const streamId = es.streamId(id);
    out.set(id, foldRows(es, streamId, byStream.get(streamId) ?? []));
  }
  return out;
}

function readRows<S, C, E extends DeciderEvent>(es: EventSourced<S, C, E>, db: Executor, streamId: string, bound: Bound): Promise<StreamRow[]> {
  const snapshots = es.snapshotEvery > 0;
  const tag = [streamId, es.name, es.evolveVersion];
  if (!bound) return snapshots ? run(db, LOAD, tag, "es_load") : run(db, LOAD_ALL, [streamId], "es_load_all");
  if ("version" in bound) {
    return snapshots
      ? run(db, LOAD_TO_VERSION, [...tag, bound.version], "es_load_to_version")
      : run(db, LOAD_ALL_TO_VERSION, [streamId, bound.version], "es_load_all_to_version");
  }
  return snapshots ? run(db, LOAD_TO_TIME, [...tag, bound.time], "es_load_to_time") : run(db, LOAD_ALL_TO_TIME, [streamId, bound.time], "es_load_all_to_time");
}

const run = (db: Executor, sql: string, params: unknown[], name: string) => executePreparedText<StreamRow>(db, { sql, params }, name);

function foldRows<S, C, E extends DeciderEvent>(es: EventSourced<S, C, E>, streamId: string, rows: StreamRow[]): Loaded<S> {
  const { evolve } = es.decider;
  let i = 0;
  let state: S;
  let version = 0;
  const first = rows[0];
  if (first && first.type === null) {
    state = es.fromSnapshot(first.data);
    version = first.version;
    i = 1;
  } else {
    state = es.decider.initialState();
  }
  const snapshotVersion = version;
  for (; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.version !== version + 1) throw new StreamGapError(streamId, version + 1, row.version);
    state = evolve(state, { type: row.type, data: row.data } as E);
    version = row.version;
  }
  return { state, version, snapshotVersion };
}
