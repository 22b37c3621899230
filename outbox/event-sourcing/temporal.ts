import type { Executor } from "../../src/db/client.ts";
import type { DeciderEvent } from "../../src/events/decider.ts";
import type { EventEnvelope } from "../envelope.ts";
import { EVENT_COLUMNS_TEXT, type EventRow, executePreparedText, toEnvelope } from "../store.ts";
import type { EventSourced } from "./aggregate.ts";
import { loadStream, StreamGapError } from "./read.ts";

/** Stream versions are Postgres integers; a bound past the largest one reads to the end. */
const MAX_VERSION = 2_147_483_647;

/** StateRead is an aggregate's state at some version of its stream. */
export interface StateRead<S> {
  state: S;
  /** The version the state is at: 0 before the first event. */
  version: number;
}

/** ReadOptions: read inside a transaction (for a consistent view beside other reads), or from the pool. */
export interface ReadOptions {
  tx?: Executor;
}

/**
 * loadState is an aggregate's current state (snapshot plus tail, one round trip). Read-only:
 * it never takes a snapshot; handleCommand does.
 */
export async function loadState<S, C, E extends DeciderEvent>(es: EventSourced<S, C, E>, id: string, options: ReadOptions = {}): Promise<StateRead<S>> {
  const { state, version } = await loadStream(es, options.tx ?? es.db, es.streamId(id));
  return { state, version };
}

/**
 * stateAtVersion is the state after the event at `version` (the current state if the stream is
 * shorter). It starts from the snapshot when that is at or below `version`, else from the start.
 */
export async function stateAtVersion<S, C, E extends DeciderEvent>(
  es: EventSourced<S, C, E>,
  id: string,
  version: number,
  options: ReadOptions = {},
): Promise<StateRead<S>> {
  if (!Number.isInteger(version) || version < 0) throw new RangeError(`version must be a non-negative integer, got ${version}`);
  const { state, version: reached } = await loadStream(es, options.tx ?? es.db, es.streamId(id), { version: Math.min(version, MAX_VERSION) });
  return { state, version: reached };
}

/**
 * stateAtTime is the state as of `time`: after the highest version whose event `time` is at or
 * before it (events are stamped by the appending process's clock). Before the first event it is
 * the initial state at version 0.
 */
export async function stateAtTime<S, C, E extends DeciderEvent>(
  es: EventSourced<S, C, E>,
  id: string,
  time: Date | string,
  options: ReadOptions = {},
): Promise<StateRead<S>> {
  const at = new Date(time);
  if (Number.isNaN(at.getTime())) throw new RangeError(`not a time: ${String(time)}`);
  const { state, version } = await loadStream(es, options.tx ?? es.db, es.streamId(id), { time: at.toISOString() });
  return { state, version };
}

/** HistoryEntry is one event of a stream with the state right after it. */
export interface HistoryEntry<S, E extends DeciderEvent> {
  version: number;
  event: E;
  /** The stored envelope: id, time, correlation, causation, actor. */
  envelope: EventEnvelope;
  state: S;
}

const HISTORY = `select ${EVENT_COLUMNS_TEXT} from outbox.events where stream_id = $1 and stream_version <= $2 order by stream_version`;

/**
 * streamHistory replays an aggregate's stream from its first event (up to `toVersion`, default
 * all) and returns each event with the state after it: the audit view of how the state came to be.
 */
export async function streamHistory<S, C, E extends DeciderEvent>(
  es: EventSourced<S, C, E>,
  id: string,
  options: ReadOptions & { toVersion?: number } = {},
): Promise<HistoryEntry<S, E>[]> {
  const streamId = es.streamId(id);
  const to = Math.min(options.toVersion ?? MAX_VERSION, MAX_VERSION);
  if (!Number.isInteger(to) || to < 0) throw new RangeError(`toVersion must be a non-negative integer, got ${options.toVersion}`);
  const rows = await executePreparedText<EventRow>(options.tx ?? es.db, { sql: HISTORY, params: [streamId, to] }, "es_history");
  const entries: HistoryEntry<S, E>[] = [];
  let state = es.decider.initialState();
  for (const row of rows) {
    const version = row.stream_version ?? 0;
    if (version !== entries.length + 1) throw new StreamGapError(streamId, entries.length + 1, version);
    const event = { type: row.type, data: row.data } as E;
    state = es.decider.evolve(state, event);
    entries.push({ version, event, envelope: toEnvelope(row), state });
  }
  return entries;
}
