import { describe, expect, it } from "bun:test";
import { wildcardComplexity } from "../../../outbox/pattern/complexity.ts";
import {
  compilePattern,
  eventSizeProblem,
  InvalidPatternError,
  MAX_EVENT_BYTES,
  MAX_PATTERN_LENGTH,
  MAX_WILDCARD_COMPLEXITY,
  PatternTooComplexError,
} from "../../../outbox/pattern/index.ts";

function refusal(pattern: unknown): InvalidPatternError {
  try {
    compilePattern(pattern);
  } catch (err) {
    if (err instanceof InvalidPatternError) return err;
    throw err;
  }
  throw new Error("the pattern was accepted");
}

/** timed runs `work` and returns how long it took, in milliseconds. */
function timed(work: () => unknown): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

describe("pattern length (EventBridge quota: 2048 characters)", () => {
  const withLength = (length: number) => {
    const base = JSON.stringify({ v: [""] }).length;
    return { v: ["x".repeat(length - base)] };
  };

  it("accepts a pattern of exactly 2048 characters of JSON and refuses 2049", () => {
    expect(JSON.stringify(withLength(MAX_PATTERN_LENGTH)).length).toBe(2048);
    expect(() => compilePattern(withLength(MAX_PATTERN_LENGTH))).not.toThrow();
    const error = refusal(withLength(MAX_PATTERN_LENGTH + 1));
    expect(error).toBeInstanceOf(PatternTooComplexError);
    expect(error.message).toContain("2049 characters");
  });

  it("refuses the issue's 50,000-character equals-ignore-case suffix at once", () => {
    const pattern = { detail: { name: [{ suffix: { "equals-ignore-case": "Ab".repeat(25_000) } }] } };
    let error: InvalidPatternError | undefined;
    expect(timed(() => (error = refusal(pattern)))).toBeLessThan(1000);
    expect(error).toBeInstanceOf(PatternTooComplexError);
  });

  it("refuses the issue's 12,000 $or branches at once", () => {
    const pattern = { $or: Array.from({ length: 12_000 }, (_, i) => ({ tag: [`t${i}`] })) };
    let error: InvalidPatternError | undefined;
    expect(timed(() => (error = refusal(pattern)))).toBeLessThan(1000);
    expect(error).toBeInstanceOf(PatternTooComplexError);
  });
});

describe("$or combinations (at most 1000)", () => {
  const parallel = (count: number, branches: number) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, { $or: Array.from({ length: branches }, (_, b) => ({ [`b${b}`]: [1] })) }]));

  it("accepts three parallel $or of ten branches (1000 combinations) and matches through them", () => {
    const compiled = compilePattern(parallel(3, 10));
    expect(compiled.matches({ f0: { b3: 1 }, f1: { b9: 1 }, f2: { b0: 1 } })).toBe(true);
    expect(compiled.matches({ f0: { b3: 1 }, f1: { b9: 2 }, f2: { b0: 1 } })).toBe(false);
  });

  it("refuses a fourth parallel $or that doubles them to 2000", () => {
    const error = refusal({ ...parallel(3, 10), g: { $or: [{ a: [1] }, { b: [1] }] } });
    expect(error).toBeInstanceOf(PatternTooComplexError);
    expect(error.message).toContain("1000 $or combinations");
  });
});

describe("wildcard complexity (event-ruler MachineComplexityEvaluator)", () => {
  // Values from event-ruler's MachineComplexityEvaluatorTest; the quotes event-ruler adds change none of them.
  const known: [string[], number][] = [
    [["abc"], 1],
    [["*ab"], 2],
    [["a*bbb"], 4],
    [["*ab*ad"], 4],
    [["*aba*"], 4],
    [["a*b*bb"], 5],
    [["a*b*cd"], 3],
    [["a*aaa"], 4],
  ];
  for (const [globs, expected] of known) {
    it(`${JSON.stringify(globs)} keeps ${expected} partial matches alive`, () => {
      expect(wildcardComplexity(globs, 100)).toBe(expected);
    });
  }

  it("refuses *:*:*:*:*:event-bus/* as AWS does [aws content_wildcard_complex_EXC]", () => {
    const error = refusal({ EventBusArn: [{ wildcard: "*:*:*:*:*:event-bus/*" }] });
    expect(error).toBeInstanceOf(PatternTooComplexError);
    expect(error.message).toContain("too complex");
  });

  it("accepts repeating sequences AWS accepts [aws content_wildcard_repeating]", () => {
    expect(wildcardComplexity(["/Users/*/dir/dir/dir/dir/dir/doc.txt"], 100)).toBeLessThanOrEqual(MAX_WILDCARD_COMPLEXITY);
    expect(() => compilePattern({ f: [{ wildcard: "/Users/*/dir/dir/dir/dir/dir/doc.txt" }] })).not.toThrow();
  });

  it("adds up the wildcards of one field, anything-but ones included, across $or branches", () => {
    expect(() => compilePattern({ p: [{ wildcard: "*a*b*" }] })).not.toThrow();
    const error = refusal({ $or: [{ p: [{ wildcard: "*a*b*" }] }, { p: [{ "anything-but": { wildcard: ["*c*d*", "*e*f*"] } }] }] });
    expect(error.path).toBe("p");
  });
});

describe("event size (PutEvents entry: 256 KB)", () => {
  it("accepts an event of exactly 256 KB of JSON and refuses one byte more", () => {
    const base = JSON.stringify({ v: "" }).length;
    expect(eventSizeProblem({ v: "x".repeat(MAX_EVENT_BYTES - base) })).toBeNull();
    expect(eventSizeProblem({ v: "x".repeat(MAX_EVENT_BYTES - base + 1) })).toContain("262145 bytes");
  });

  it("counts UTF-8 bytes, not characters", () => {
    expect(eventSizeProblem({ v: "é".repeat(MAX_EVENT_BYTES / 2) })).toContain("bytes");
  });
});

// Quadratic work on these sizes takes many seconds; the bounds are loose because the test machine is shared.
describe("matching stays linear in the event", () => {
  it("tests an ignore-case suffix against a 250,000-character value by reading its tail", () => {
    const compiled = compilePattern({ v: [{ suffix: { "equals-ignore-case": "Ab".repeat(1000) } }] });
    const value = "a".repeat(250_000);
    expect(timed(() => expect(compiled.matches({ v: value })).toBe(false))).toBeLessThan(2000);
    expect(compiled.matches({ v: `${value}${"aB".repeat(1000)}` })).toBe(true);
  });

  it("refuses a wildcard whose repeated run would keep hundreds of partial matches alive", () => {
    expect(refusal({ v: [{ wildcard: `*${"a".repeat(500)}b*c` }] })).toBeInstanceOf(PatternTooComplexError);
  });

  it("tests a wildcard with long runs against a 250,000-character value in one pass", () => {
    const run = `a${"b".repeat(900)}c`;
    const compiled = compilePattern({ v: [{ wildcard: `*${run}*${run}*d` }] });
    const value = `a${"b".repeat(899)}`.repeat(280);
    expect(timed(() => expect(compiled.matches({ v: value })).toBe(false))).toBeLessThan(2000);
    expect(compiled.matches({ v: `x${run}y${run}zd` })).toBe(true);
  });

  it("walks 20,000 array elements with an array-consistent rule that fails in every one", () => {
    const compiled = compilePattern({ items: { id: [{ prefix: "" }], state: ["done"], note: [{ exists: false }] } });
    const items = Array.from({ length: 20_000 }, (_, i) => ({ id: `i${i}`, state: "open" }));
    expect(timed(() => expect(compiled.matches({ items })).toBe(false))).toBeLessThan(2000);
    items[19_999] = { id: "last", state: "done" };
    expect(compiled.matches({ items })).toBe(true);
  });

  it("shares the work of $or branches over one large array", () => {
    // 60 branches keep the pattern under 2048 characters; each is its own sub-rule over the same array.
    const compiled = compilePattern({ $or: Array.from({ length: 60 }, (_, i) => ({ tags: [`t${i}`], kind: ["k"] })) });
    const tags = Array.from({ length: 20_000 }, (_, i) => `u${i}`);
    expect(timed(() => expect(compiled.matches({ tags, kind: "k" })).toBe(false))).toBeLessThan(2000);
    tags.push("t59");
    expect(compiled.matches({ tags, kind: "k" })).toBe(true);
  });
});
