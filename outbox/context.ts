import { AsyncLocalStorage } from "node:async_hooks";
import type { EventContext } from "./envelope.ts";

const storage = new AsyncLocalStorage<EventContext>();

/**
 * runWithEventContext runs `fn` so that every event appended inside it inherits the
 * correlation, causation and actor ids, without threading them through every call.
 */
export function runWithEventContext<T>(ctx: EventContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** currentEventContext returns the ambient context set by the HTTP edge or the event worker. */
export function currentEventContext(): EventContext | undefined {
  return storage.getStore();
}
