import type { Db } from "../../src/db/client.ts";
import type { Decider, DeciderEvent } from "../../src/events/decider.ts";
import type { AnyEventDefinition } from "../../src/events/definition.ts";
import type { Appender } from "../types.ts";

/** DEFAULT_SNAPSHOT_EVERY is how many events a stream may grow past its last snapshot before a new one is taken. */
export const DEFAULT_SNAPSHOT_EVERY = 50;
/** DEFAULT_MAX_ATTEMPTS bounds handleCommand's read-decide-append attempts on version conflicts. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** EventSourcedOptions bind a decider to the event log. */
export interface EventSourcedOptions<S, C, E extends DeciderEvent> {
  /**
   * The aggregate's name, e.g. `order`: streams are `<name>-<id>` unless `streamId` says
   * otherwise, and snapshots are tagged with it (with the decider's evolve version).
   */
  name: string;
  decider: Decider<S, C, E>;
  /**
   * The definitions of every event the decider decides (usually `internal`: the aggregate's own
   * stream events). handleCommand appends through them, so the data is validated by their schemas.
   */
  events: readonly AnyEventDefinition[];
  db: Db;
  outbox: Appender;
  /** Maps an aggregate id to its stream id (default `<name>-<id>`). Events get the id as `subject`. */
  streamId?: (id: string) => string;
  /**
   * Take a snapshot when a command leaves the stream this many events past the last usable one
   * (default 50); 0 turns snapshots off (neither written nor read).
   */
  snapshotEvery?: number;
  /** Attempts of handleCommand in its own transaction before a conflict becomes a 409 (default 5). */
  maxAttempts?: number;
  /**
   * State to JSON and back for snapshots. By default the state is stored as it is, so it must be
   * JSON-safe (no Date, Map, class instances, bigint, undefined fields), like event data.
   */
  toSnapshot?: (state: S) => unknown;
  fromSnapshot?: (json: unknown) => S;
}

/** EventSourced is a decider bound to the event log: what handleCommand and the temporal reads take. */
export interface EventSourced<S, C, E extends DeciderEvent> {
  readonly name: string;
  readonly decider: Decider<S, C, E>;
  /** The definition of each event type the decider decides, by type name. */
  readonly definitions: ReadonlyMap<string, AnyEventDefinition>;
  readonly evolveVersion: number;
  readonly db: Db;
  readonly outbox: Appender;
  readonly snapshotEvery: number;
  readonly maxAttempts: number;
  streamId(id: string): string;
  toSnapshot(state: S): unknown;
  fromSnapshot(json: unknown): S;
}

const NAME = /^[a-z][a-z0-9._-]*$/;

/**
 * eventSourced binds a decider to the event log, for handleCommand and the temporal reads.
 *
 * @example const accounts = eventSourced({ name: "account", decider: account, events: accountEvents, db, outbox });
 *          const { state, version } = await handleCommand(accounts, accountId, { type: "deposit", amount: 100 });
 */
export function eventSourced<S, C, E extends DeciderEvent>(opts: EventSourcedOptions<S, C, E>): EventSourced<S, C, E> {
  if (!NAME.test(opts.name)) throw new Error(`event-sourced name "${opts.name}" must be lower-case, e.g. "order"`);
  const evolveVersion = opts.decider.evolveVersion ?? 1;
  const snapshotEvery = opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
  const maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(evolveVersion) || evolveVersion < 1) throw new Error(`${opts.name}: evolveVersion must be a positive integer`);
  if (!Number.isInteger(snapshotEvery) || snapshotEvery < 0) throw new Error(`${opts.name}: snapshotEvery must be 0 (off) or a positive integer`);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`${opts.name}: maxAttempts must be at least 1`);
  const prefix = `${opts.name}-`;
  return Object.freeze({
    name: opts.name,
    decider: opts.decider,
    definitions: new Map(opts.events.map((d) => [d.type, d])),
    evolveVersion,
    db: opts.db,
    outbox: opts.outbox,
    snapshotEvery,
    maxAttempts,
    streamId: opts.streamId ?? ((id: string) => prefix + id),
    toSnapshot: opts.toSnapshot ?? ((state: S) => state),
    fromSnapshot: opts.fromSnapshot ?? ((json: unknown) => json as S),
  });
}
