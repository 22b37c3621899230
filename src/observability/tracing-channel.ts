import { tracingChannel } from "node:diagnostics_channel";

/**
 * Bun's `diagnostics_channel.TracingChannel` has no `hasSubscribers` getter (Node's has, since
 * 22). Libraries that check it before tracing read `undefined` and trace anyway: ioredis
 * (`hasSubscribers !== false`) wraps every command in a traced promise and copies its arguments,
 * pino (`hasSubscribers === false`) runs every log line through `traceSync`, all for nobody. This
 * adds the getter as Node defines it (any of the five channels has a subscriber), on the shared
 * prototype, so channels made before this module ran are covered too. Imported for its effect by
 * the logger, which every process loads first.
 */
const proto = Object.getPrototypeOf(tracingChannel("eventful-monolith:probe")) as object;
if (!("hasSubscribers" in proto)) {
  Object.defineProperty(proto, "hasSubscribers", {
    configurable: true,
    get(this: Record<"start" | "end" | "asyncStart" | "asyncEnd" | "error", { hasSubscribers: boolean } | undefined>) {
      return Boolean(
        this.start?.hasSubscribers ||
          this.end?.hasSubscribers ||
          this.asyncStart?.hasSubscribers ||
          this.asyncEnd?.hasSubscribers ||
          this.error?.hasSubscribers,
      );
    },
  });
}
