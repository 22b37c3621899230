import { type AnyEventDefinition, defineSubscription, type EventEnvelope } from "../../src/platform.ts";
import { SOURCES, type SourceDeps } from "./sources.ts";
import { deliver, type StoreDeps } from "./store.ts";

/** NotifyDeps are what the notify subscription needs. */
export type NotifyDeps = SourceDeps & StoreDeps;

// Each event definition once, in the order the sources name them.
const consumed = [...new Set(SOURCES.map((s) => s.on))] as AnyEventDefinition[];

/**
 * notifyOnEvents turns every source's events into notifications, a batch at a time: each source
 * drafts from its events of the batch (one read API call per source, not per event), then one
 * insert per chunk of 5,000 stores them all, in the delivery's transaction with the checkpoint.
 * The unique (cause event, recipient) makes it idempotent: a batch delivered again stores,
 * emails and pushes nothing more. It starts from now: deployed on a running system, it does not
 * notify anyone of the past.
 */
export const notifyOnEvents = (deps: NotifyDeps) =>
  defineSubscription({
    name: "notifications.notify",
    on: consumed,
    partitions: 2,
    // A steady stream comes in fewer, larger deliveries; nobody notices 50 ms on a notification.
    lingerMs: 50,
    startFrom: "now",
    handleBatch: async (events: EventEnvelope[], { tx, sql }) => {
      const drafts = [];
      for (const s of SOURCES) {
        const mine = events.filter((e) => e.type === s.on.type);
        if (mine.length) drafts.push(...(await s.draft(mine as never, deps)));
      }
      const rank = new Map(events.map((e, i) => [e.id, i]));
      await deliver(deps, tx, sql, drafts, (cause) => rank.get(cause.id) ?? 0);
    },
  });
