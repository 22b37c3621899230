import { describe, expect, it } from "bun:test";
import { fullJitterDelay } from "../../outbox/backoff.ts";
import { errorText } from "../../outbox/error-text.ts";

describe("errorText", () => {
  it("puts a wrapped driver error's cause first, where the reason is", () => {
    const driver = Object.assign(new Error('duplicate key value violates unique constraint "events_id_key"'), { name: "PostgresError", code: "23505" });
    const wrapped = new Error("Failed query: insert into outbox.events ...", { cause: driver });
    expect(errorText(wrapped)).toBe(
      'PostgresError: duplicate key value violates unique constraint "events_id_key" (in Error: Failed query: insert into outbox.events ...)',
    );
  });

  it("names an AWS error by its exception name, and a plain Node error by its code", () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    expect(errorText(throttled)).toBe("ThrottlingException: Rate exceeded");
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    expect(errorText(reset)).toBe("ECONNRESET: socket hang up");
    expect(errorText(new Error("PutEvents failed", { cause: throttled }))).toBe("ThrottlingException: Rate exceeded (in Error: PutEvents failed)");
  });

  it("renders thrown non-errors and cuts long texts to 4,000 characters", () => {
    expect(errorText("plain string")).toBe("plain string");
    expect(errorText(42)).toBe("42");
    expect(errorText(new Error("x".repeat(10_000)))).toHaveLength(4000);
  });
});

describe("fullJitterDelay", () => {
  it("draws from [0, min(cap, base * 2^(attempt-1))]", () => {
    const top = () => 0.999_999;
    expect(fullJitterDelay(1, 100, 30_000, top)).toBe(99);
    expect(fullJitterDelay(4, 100, 30_000, top)).toBe(799);
    expect(fullJitterDelay(20, 100, 30_000, top)).toBe(29_999);
    expect(fullJitterDelay(3, 100, 30_000, () => 0)).toBe(0);
    for (let i = 0; i < 1000; i++) {
      const d = fullJitterDelay(1 + (i % 12), 50, 5000);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(5000, 50 * 2 ** (i % 12)));
    }
  });
});
