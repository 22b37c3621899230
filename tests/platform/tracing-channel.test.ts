import { describe, expect, it } from "bun:test";
import { tracingChannel } from "node:diagnostics_channel";
import { traceCommand } from "ioredis/built/tracing.js";
import "../../src/observability/tracing-channel.ts";

// Under Bun a TracingChannel had no `hasSubscribers`, and ioredis and pino took that for "someone
// listens": every Redis command and every log line was traced for nobody.
describe("TracingChannel.hasSubscribers under Bun", () => {
  it("is false until a handler subscribes, and false again once it leaves", () => {
    const channel = tracingChannel("test:has-subscribers");
    expect(channel.hasSubscribers).toBe(false);
    const handlers = { asyncEnd() {} };
    channel.subscribe(handlers);
    expect(channel.hasSubscribers).toBe(true);
    channel.unsubscribe(handlers);
    expect(channel.hasSubscribers).toBe(false);
  });

  it("keeps ioredis from building trace contexts while nothing subscribes, and lets it trace once something does", async () => {
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
