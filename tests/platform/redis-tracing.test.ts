import { describe, expect, it } from "bun:test";
import { tracingChannel } from "node:diagnostics_channel";
import { traceCommand } from "ioredis/built/tracing.js";

// patches/ioredis@6.0.0.patch: under Bun a TracingChannel has no `hasSubscribers`, and ioredis
// took that for "someone listens", tracing (and copying the arguments of) every command.
describe("ioredis command tracing under Bun", () => {
  it("builds no trace context while nothing subscribes, and traces once something does", async () => {
    let contexts = 0;
    const context = () => {
      contexts++;
      return { command: "PING", args: [], database: 0, serverAddress: "127.0.0.1", serverPort: 6379 };
    };
    expect(await traceCommand(() => Promise.resolve("PONG"), context)).toBe("PONG");
    expect(contexts).toBe(0);

    const seen: unknown[] = [];
    const channel = tracingChannel("ioredis:command");
    const handlers = { start: (m: unknown) => seen.push(m), end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
    channel.subscribe(handlers);
    try {
      expect(await traceCommand(() => Promise.resolve("PONG"), context)).toBe("PONG");
      expect(contexts).toBe(1);
      expect(seen).toHaveLength(1);
    } finally {
      channel.unsubscribe(handlers);
    }
  });
});
