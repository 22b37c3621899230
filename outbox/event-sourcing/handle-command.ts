import type { Tx } from "../../src/db/client.ts";
import { type DeciderEvent, decisionEvents } from "../../src/events/decider.ts";
import type { NewEvent } from "../../src/events/definition.ts";
import type { EventEnvelope } from "../envelope.ts";
import { StreamVersionConflictError } from "../errors.ts";
import type { EventSourced } from "./aggregate.ts";
import { type Loaded, loadStream } from "./read.ts";
import { snapshotDue, writeSnapshot } from "./snapshots.ts";

/** CommandResult is what handleCommand returns: the state after the command and what it appended. */
export interface CommandResult<S, E extends DeciderEvent> {
  state: S;
  /** The new events as the decider sees them (data as validated and stored). Empty when the decision was to do nothing. */
  events: E[];
  /** The same events as appended to the log. */
  envelopes: EventEnvelope[];
  /** The stream's version after the command. */
  version: number;
  streamId: string;
}

/** HandleCommandOptions: run inside the caller's transaction, or (default) in one of its own. */
export interface HandleCommandOptions<S = unknown, E extends DeciderEvent = DeciderEvent> {
  /**
   * The caller's transaction: the events commit or roll back with its other writes. A version
   * conflict then throws StreamVersionConflictError at once, with no retry: the failed insert
   * has aborted the transaction, so the caller must let it roll back (a route answers 409).
   */
  tx?: Tx;
  /**
   * The stream is new: its id was made for this command (a fresh UUIDv7). The read is skipped
   * and the command decided on the initial state, saving a round trip; the append still expects
   * version 0, so should the stream exist after all, that is a version conflict (and, in its own
   * transaction, the retry reads it).
   */
  newStream?: boolean;
  /**
   * The stream as the caller read it in this same transaction (`loadStreams`, for a batch of
   * commands): decided on without reading it again. Only with `tx`. Should another writer have
   * appended since, the append conflicts as usual.
   */
  loaded?: Loaded<unknown>;
  /**
   * With `tx`: check the insert at commit instead of now (no round trip of its own), so a
   * version conflict fails the caller's transaction, with StreamVersionConflictError, when it
   * commits rather than here. For a caller that runs several commands in one transaction and
   * lets the whole of it be retried.
   */
  writeBehind?: boolean;
  /**
   * Events outside the stream that the command implies (an aggregate's public events), made from
   * the state after the command and its new events, and appended in the same insert as the
   * stream's (see `AppendToStreamOptions.alongside`): they commit with them, for one statement.
   */
  alongside?: (state: S, events: E[]) => readonly NewEvent[];
}

/**
 * handleCommand runs a command against an event-sourced aggregate: it loads the stream
 * (snapshot plus tail, one round trip), calls `decide`, appends the events expecting the version
 * it read, and takes a snapshot when due. In its own transaction (no `tx`) a version conflict
 * re-reads and re-decides, up to the aggregate's `maxAttempts`; then it throws
 * StreamVersionConflictError (kind `conflict`, code `EVENTS.CONCURRENCY_CONFLICT`: HTTP 409).
 * A DomainError thrown by `decide` propagates unchanged and nothing is written.
 *
 * @example const { state, version } = await handleCommand(accounts, accountId, { type: "deposit", amount: 100 });
 */
export async function handleCommand<S, C, E extends DeciderEvent>(
  es: EventSourced<S, C, E>,
  id: string,
  command: C,
  options: HandleCommandOptions<S, E> = {},
): Promise<CommandResult<S, E>> {
  const streamId = es.streamId(id);
  if (options.tx) {
    return attempt(
      es,
      options.tx,
      id,
      streamId,
      command,
      options.writeBehind === true,
      options.newStream === true,
      options.loaded as Loaded<S> | undefined,
      options.alongside,
    );
  }
  for (let n = 1; ; n++) {
    try {
      return await es.db.transaction((tx) => attempt(es, tx, id, streamId, command, true, n === 1 && options.newStream === true, undefined, options.alongside));
    } catch (err) {
      if (!(err instanceof StreamVersionConflictError) || err.streamId !== streamId) throw err;
      // The insert that conflicted waited for the winner to commit, so a re-read sees its events
      // at once: every round lets at least one writer through, and no backoff is needed.
      if (n >= es.maxAttempts) throw new StreamVersionConflictError(streamId, err.expectedVersion, n);
    }
  }
}

/** definitionOf is the definition an aggregate declared for a decided event type; a type it did not declare is a bug. */
function definitionOf(es: EventSourced<unknown, unknown, DeciderEvent>, type: string) {
  const def = es.definitions.get(type);
  if (!def) throw new Error(`${es.name}: the decider decided "${type}", which is not among the events given to eventSourced`);
  return def;
}

/**
 * attempt is one read-decide-append in `tx`. In its own transaction the insert and the snapshot
 * are write-behind (`behind`), so the whole command is two round trips (BEGIN with the read; the
 * writes with COMMIT), and a conflict surfaces from the commit. In the caller's, the insert is
 * awaited so that a conflict is thrown here, where the caller appends, unless the caller asked
 * for write-behind.
 */
async function attempt<S, C, E extends DeciderEvent>(
  es: EventSourced<S, C, E>,
  tx: Tx,
  id: string,
  streamId: string,
  command: C,
  behind: boolean,
  isNew: boolean,
  read?: Loaded<S>,
  alongside?: HandleCommandOptions<S, E>["alongside"],
): Promise<CommandResult<S, E>> {
  const loaded = isNew ? { state: es.decider.initialState(), version: 0, snapshotVersion: 0 } : (read ?? (await loadStream(es, tx, streamId)));
  const decided = decisionEvents(es.decider.decide(command, loaded.state));
  if (decided.length === 0) return { state: loaded.state, events: [], envelopes: [], version: loaded.version, streamId };
  // Evolve with the data as stored (after the schema's parsing), so this state equals a replay.
  let state = loaded.state;
  let events: E[] | undefined;
  const evolve = (envelopes: EventEnvelope[]) => {
    events = envelopes.map((env) => ({ type: env.type, data: env.data }) as E);
    for (const e of events) state = es.decider.evolve(state, e);
    return events;
  };
  const envelopes = await es.outbox.appendToStream(
    tx,
    streamId,
    loaded.version,
    decided.map((e) => definitionOf(es as never, e.type).with(e.data as never, { subject: id })),
    {
      versionRead: true,
      writeBehind: behind,
      ...(alongside
        ? {
            alongside: (appended: EventEnvelope[]) => {
              const appendedEvents = evolve(appended);
              return alongside(state, appendedEvents);
            },
          }
        : {}),
    },
  );
  events ??= evolve(envelopes);
  const version = loaded.version + events.length;
  if (snapshotDue(es, version, loaded.snapshotVersion)) await writeSnapshot(es, tx, streamId, version, state);
  return { state, events, envelopes, version, streamId };
}
