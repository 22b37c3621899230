import { type Tx, writeBehind } from "../../src/db/client.ts";
import type { DeciderEvent } from "../../src/events/decider.ts";
import { executePreparedText } from "../store.ts";
import type { EventSourced } from "./aggregate.ts";

// One row per stream: a snapshot replaces an older one, or one another decider or evolve version
// took (a rolling deploy may flip it back and forth for a while; each reader ignores the other's).
const UPSERT = `
  insert into outbox.snapshots (stream_id, version, decider, evolve_version, state, taken_at)
  values ($1, $2, $3, $4, $5::text::jsonb, now())
  on conflict (stream_id) do update
     set version = excluded.version, decider = excluded.decider, evolve_version = excluded.evolve_version,
         state = excluded.state, taken_at = excluded.taken_at
   where snapshots.version < excluded.version or snapshots.decider <> excluded.decider or snapshots.evolve_version <> excluded.evolve_version`;

/** snapshotDue tells whether a stream now at `version`, last snapshotted at `snapshotVersion`, needs a new snapshot. */
export function snapshotDue<S, C, E extends DeciderEvent>(es: EventSourced<S, C, E>, version: number, snapshotVersion: number): boolean {
  return es.snapshotEvery > 0 && version - snapshotVersion >= es.snapshotEvery;
}

/**
 * writeSnapshot stores `state` as the stream's snapshot at `version`, in `tx` beside the events
 * it folds, write-behind: it costs no round trip of its own, and it cannot conflict (an upsert
 * on the stream's row, which the events' unique index already serialises).
 */
export function writeSnapshot<S, C, E extends DeciderEvent>(es: EventSourced<S, C, E>, tx: Tx, streamId: string, version: number, state: S): Promise<void> {
  const params = [streamId, version, es.name, es.evolveVersion, JSON.stringify(es.toSnapshot(state))];
  return writeBehind(tx, executePreparedText(tx, { sql: UPSERT, params }, "es_snapshot_upsert"));
}
