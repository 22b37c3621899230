import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { compilePattern, testPattern } from "../../../outbox/pattern/index.ts";

/** [name, pattern, expected types] */
type TypesCase = readonly [string, unknown, readonly string[] | null];

const typesCases: TypesCase[] = [
  ["exact type list", { type: ["order.created", "order.cancelled"] }, ["order.cancelled", "order.created"]],
  ["duplicates collapse", { type: ["a", "a", "b"] }, ["a", "b"]],
  ["prefix leaves type open", { type: [{ prefix: "order." }] }, null],
  ["exact plus filter leaves type open", { type: ["a", { prefix: "b" }] }, null],
  ["non-string value leaves type open", { type: ["a", 1] }, null],
  ["no type key", { source: ["orders"] }, null],
  ["empty pattern", {}, null],
  ["nested type is not the top-level type", { detail: { type: ["a"] } }, null],
  ["type as nested object", { type: { name: ["a"] } }, null],
  ["$or union when every branch is exact", { $or: [{ type: ["a"] }, { type: ["b", "c"] }] }, ["a", "b", "c"]],
  ["$or with an open branch", { $or: [{ type: ["a"] }, { source: ["x"] }] }, null],
  ["$or with a filtered branch", { $or: [{ type: ["a"] }, { type: [{ prefix: "b" }] }] }, null],
  ["type AND $or without types keeps the type", { type: ["a", "b"], $or: [{ x: ["1"] }, { y: ["2"] }] }, ["a", "b"]],
  ["a type inside a branch replaces the outer one (rule overriding)", { type: ["a", "b"], $or: [{ type: ["b"] }, { type: ["c"] }] }, ["b", "c"]],
  ["a type after the $or replaces the branches' ones", { $or: [{ type: ["b"] }, { type: ["c"] }], type: ["a"] }, ["a"]],
  ["nested $or inside a branch", { $or: [{ type: ["a"] }, { $or: [{ type: ["b"] }, { type: ["c"] }] }] }, ["a", "b", "c"]],
  ["$or inside detail does not constrain type", { type: ["a"], detail: { $or: [{ type: ["b"] }, { type: ["c"] }] } }, ["a"]],
  ["IP literal could match other spellings", { type: ["::1"] }, null],
  ["a type that may be absent is open", { type: ["a", { exists: false }] }, null],
  ["exists true is open", { type: [{ exists: true }] }, null],
  ["a dotted key below type is not the type", { "type.x": ["a"] }, null],
];

describe("types extraction", () => {
  for (const [name, pattern, expected] of typesCases) {
    it(name, () => {
      const types = compilePattern(pattern).types;
      expect(types === null ? null : [...types].sort()).toEqual(expected === null ? null : [...expected]);
    });
  }

  it("agrees with matches(): an event whose type is outside `types` never matches", () => {
    const compiled = compilePattern({ type: ["a", "b"], $or: [{ type: ["b"] }, { n: [1] }] });
    expect([...(compiled.types ?? [])].sort()).toEqual(["a", "b"]);
    expect(compiled.matches({ type: "c", n: 1 })).toBe(false);
    expect(compiled.matches({ type: "a", n: 1 })).toBe(true);
  });
});

describe("compiled pattern", () => {
  it("keeps the source and can be reused across many events", () => {
    const source = { type: ["order.created"], data: { total: [{ numeric: [">=", 100] }] } };
    const compiled = compilePattern(source);
    expect(compiled.source).toBe(source);
    const events = Array.from({ length: 1000 }, (_, i) => ({ type: "order.created", data: { total: i } }));
    expect(events.filter((e) => compiled.matches(e)).length).toBe(900);
  });

  it("is not affected by later mutation of the source", () => {
    const source: Record<string, unknown> = { type: ["a"] };
    const compiled = compilePattern(source);
    source.type = ["b"];
    expect(compiled.matches({ type: "a" })).toBe(true);
    expect(compiled.types).toEqual(["a"]);
  });

  it("is frozen", () => {
    const compiled = compilePattern({ type: ["a"] });
    expect(Object.isFrozen(compiled)).toBe(true);
    expect(Object.isFrozen(compiled.types)).toBe(true);
  });
});

describe("properties", () => {
  // Small random patterns over `type` and one data field, with $or and overriding, against small events.
  const typeLeaf = fc.oneof(fc.subarray(["a", "b", "c"], { minLength: 1 }), fc.constant([{ prefix: "a" }]), fc.constant(["a", { exists: false }]));
  const branch = fc.record({ type: typeLeaf, n: fc.constant([1]) }, { requiredKeys: [] }).filter((b) => Object.keys(b).length > 0);
  const patterns = fc.record(
    { type: typeLeaf, $or: fc.array(branch, { minLength: 2, maxLength: 3 }), data: fc.constant({ n: [{ numeric: [">", 0] }] }) },
    { requiredKeys: [] },
  );
  const events = fc.record(
    { type: fc.constantFrom("a", "b", "c", "ab"), n: fc.constantFrom(0, 1), data: fc.record({ n: fc.constantFrom(0, 1) }) },
    { requiredKeys: [] },
  );

  it("types never excludes an event the pattern matches", () => {
    fc.assert(
      fc.property(patterns, events, (pattern, event) => {
        const compiled = compilePattern(pattern);
        if (compiled.types !== null && compiled.matches(event)) expect(compiled.types).toContain(event.type as string);
      }),
      { numRuns: 3000 },
    );
  });

  const globChars = fc.constantFrom("a", "b", "*", ".", "\\*");
  const globs = fc
    .array(globChars, { maxLength: 8 })
    .map((parts) => parts.join(""))
    .filter((glob) => !glob.includes("**"));

  function referenceGlob(glob: string): RegExp {
    let source = "";
    for (let i = 0; i < glob.length; i++) {
      const char = glob[i] as string;
      if (char === "\\") {
        source += "\\*";
        i++;
      } else if (char === "*") {
        source += "[\\s\\S]*";
      } else {
        source += char === "." ? "\\." : char;
      }
    }
    return new RegExp(`^${source}$`);
  }

  it("wildcard agrees with a regular-expression reference", () => {
    fc.assert(
      fc.property(
        globs,
        fc.array(fc.constantFrom("a", "b", "*", "."), { maxLength: 10 }).map((cs) => cs.join("")),
        (glob, value) => {
          expect(testPattern({ v: [{ wildcard: glob }] }, { v: value })).toBe(referenceGlob(glob).test(value));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("IPv4 cidr agrees with integer arithmetic", () => {
    const octets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
    fc.assert(
      fc.property(octets, octets, fc.integer({ min: 0, max: 31 }), (base, candidate, bits) => {
        const toInt = (o: readonly number[]) => o.reduce((n, x) => n * 256 + x, 0);
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        const network = (toInt(base) & mask) >>> 0;
        const networkText = [network >>> 24, (network >>> 16) & 255, (network >>> 8) & 255, network & 255].join(".");
        const expected = (toInt(candidate) & mask) >>> 0 === network;
        expect(testPattern({ ip: [{ cidr: `${networkText}/${bits}` }] }, { ip: candidate.join(".") })).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it("IPv6 addresses match their own /112 whatever the spelling", () => {
    const groups = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(groups, fc.boolean(), fc.boolean(), (g, compress, upper) => {
        const hex = g.map((x) => x.toString(16));
        let text = hex.join(":");
        if (compress) {
          // Compress the longest run of zero groups, if any, the way most printers do.
          let bestStart = -1;
          let bestLength = 0;
          for (let i = 0; i < 8; ) {
            if (g[i] !== 0) {
              i++;
              continue;
            }
            let j = i;
            while (j < 8 && g[j] === 0) j++;
            if (j - i > bestLength) {
              bestStart = i;
              bestLength = j - i;
            }
            i = j;
          }
          if (bestLength > 0) text = `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
        }
        if (upper) text = text.toUpperCase();
        const network = [...g.slice(0, 7).map((x) => x.toString(16)), "0"].join(":");
        expect(testPattern({ ip: [{ cidr: `${network}/112` }] }, { ip: text })).toBe(true);
        expect(testPattern({ ip: [g.map((x) => x.toString(16)).join(":")] }, { ip: text })).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
