import { describe, expect, it } from "bun:test";
import { testPattern } from "../../../outbox/pattern/index.ts";

/** [name, pattern, event, expected match]; sources in brackets as in matching.unit.test.ts. */
type MatchCase = readonly [string, unknown, unknown, boolean];

const numeric: MatchCase[] = [
  ["greater than [docs]", { c: [{ numeric: [">", 0] }] }, { c: 1 }, true],
  ["greater than, boundary [docs]", { c: [{ numeric: [">", 0] }] }, { c: 0 }, false],
  ["greater or equal, boundary [docs]", { c: [{ numeric: [">=", 0] }] }, { c: 0 }, true],
  ["less than [docs]", { c: [{ numeric: ["<", 10] }] }, { c: 9.999 }, true],
  ["less than, boundary [docs]", { c: [{ numeric: ["<", 10] }] }, { c: 10 }, false],
  ["less or equal, boundary [docs]", { c: [{ numeric: ["<=", 10] }] }, { c: 10 }, true],
  ["equals with an exponent [docs]", { x: [{ numeric: ["=", 3.018e2] }] }, { x: 301.8 }, true],
  ["equals, near miss [ruler]", { x: [{ numeric: ["=", 3] }] }, { x: 3.0001 }, false],
  ["range inside [docs]", { c: [{ numeric: [">", 0, "<=", 5] }] }, { c: 5 }, true],
  ["range below [aws content_numeric_and_NEG]", { c: [{ numeric: [">", 0, "<=", 5] }] }, { c: 0 }, false],
  ["range above [ruler]", { c: [{ numeric: [">", 0, "<=", 5] }] }, { c: 5.5 }, false],
  ["closed range, lower boundary [ruler]", { c: [{ numeric: [">=", -1, "<", 1] }] }, { c: -1 }, true],
  ["an int-valued float [aws numeric-int-float]", { n: [{ numeric: [">", 100] }] }, { n: 101.0 }, true],
  ["a float beside an int [ruler]", { n: [{ numeric: [">=", 2] }] }, { n: 2.5 }, true],
  ["negative numbers [ruler]", { c: [{ numeric: ["<", -100] }] }, { c: -100.5 }, true],
  ["beyond the old ±5e9 limit [ruler: full double range since 1.8]", { c: [{ numeric: [">", 1e10] }] }, { c: 2.5e15 }, true],
  ["tiny decimals keep their precision [ruler ComparableNumber]", { c: [{ numeric: [">", 0.000001] }] }, { c: 0.0000011 }, true],
  ["1E-320 is a number too [ruler JsonRuleCompilerTest]", { c: [{ numeric: [">", 0] }] }, { c: 1e-320 }, true],
  ["doubles compare as doubles: 0.1 + 0.2 is not 0.3 [ruler]", { c: [{ numeric: ["=", 0.3] }] }, { c: 0.1 + 0.2 }, false],
  ["a number too big for a double is in no range [ruler: not comparable]", { c: [{ numeric: [">", 0] }] }, { c: Number.POSITIVE_INFINITY }, false],
  ["numeric string [aws numeric-string_NEG]", { c: [{ numeric: [">", 0] }] }, { c: "5" }, false],
  ["boolean [ruler]", { c: [{ numeric: [">", 0] }] }, { c: true }, false],
  ["null [aws numeric-null_NEG]", { c: [{ numeric: [">", 0] }] }, { c: null }, false],
  ["missing field [ruler]", { c: [{ numeric: [">", 0] }] }, {}, false],
  ["OR of two ranges [ruler]", { c: [{ numeric: ["<", 0] }, { numeric: [">", 100] }] }, { c: 101 }, true],
  ["one array element in range [ruler]", { c: [{ numeric: [">", 100] }] }, { c: [1, 2, 300] }, true],
];

const exists: MatchCase[] = [
  ["exists true, present [docs]", { detail: { state: [{ exists: true }] } }, { detail: { state: "pending" } }, true],
  ["exists true, null is a leaf [ruler]", { s: [{ exists: true }] }, { s: null }, true],
  ["exists true, empty string [ruler]", { s: [{ exists: true }] }, { s: "" }, true],
  ["exists true, missing [aws content_exists_NEG]", { detail: { state: [{ exists: true }] } }, { detail: { other: 1 } }, false],
  ["exists true, object is not a leaf [docs]", { detail: { c: [{ exists: true }] } }, { detail: { c: { c1: 100 } } }, false],
  ["exists true, empty array has no leaf [aws exists_list_empty_NEG]", { s: [{ exists: true }] }, { s: [] }, false],
  ["exists true, array of objects has no leaf here [ruler]", { s: [{ exists: true }] }, { s: [{ a: 1 }] }, false],
  ["exists true, array with a value [ruler]", { s: [{ exists: true }] }, { s: [1] }, true],
  ["exists false, missing [docs]", { c: [{ exists: false }] }, { other: 1 }, true],
  ["exists false, present [aws content_exists_false_NEG]", { c: [{ exists: false }] }, { c: 0 }, false],
  ["exists false, null is present [ruler]", { c: [{ exists: false }] }, { c: null }, false],
  ["exists false, an object is not a leaf [docs]", { detail: { c: [{ exists: false }] } }, { detail: { c: { c1: 100 } } }, true],
  ["exists false, empty array [ruler]", { c: [{ exists: false }] }, { c: [] }, true],
  ["exists false, parent missing [ruler]", { detail: { c: [{ exists: false }] } }, {}, true],
  ["exists false, parent is a scalar [ruler]", { detail: { c: [{ exists: false }] } }, { detail: "x" }, true],
  [
    "exists false, any element having it is enough to fail [ruler StructuredFinder]",
    { items: { c: [{ exists: false }] } },
    { items: [{ c: 1 }, { d: 2 }] },
    false,
  ],
  ["exists false, no element has it [ruler]", { items: { c: [{ exists: false }] } }, { items: [{ d: 1 }, { d: 2 }] }, true],
  [
    "exists false after a value step is judged in that element [ruler StructuredFinder]",
    { items: { a: ["x"], c: [{ exists: false }] } },
    { items: [{ a: "x" }, { a: "y", c: 1 }] },
    true,
  ],
  [
    "exists false after a value step, element has it [ruler StructuredFinder]",
    { items: { a: ["x"], c: [{ exists: false }] } },
    { items: [{ a: "x", c: 1 }, { a: "y" }] },
    false,
  ],
  [
    "exists false before a value step is judged over every element [ruler: steps run in path order]",
    { items: { c: [{ exists: false }], d: ["x"] } },
    { items: [{ c: 1 }, { d: "x" }] },
    false,
  ],
  ["exists false OR a value, value present [ruler]", { c: ["x", { exists: false }] }, { c: "x" }, true],
  ["exists false OR a value, other value [ruler]", { c: ["x", { exists: false }] }, { c: "y" }, false],
  ["exists false on a non-object event [ours]", { c: [{ exists: false }] }, "not an object", true],
  ["exists false in an $or branch [ruler]", { $or: [{ a: [{ exists: false }] }, { a: ["1"] }] }, {}, true],
  [
    "anything-but OR exists false, path absent [aws or-exists]",
    { d: { h: { S: [{ "anything-but": ["roses"] }, { exists: false }] } } },
    { d: { h: { N: "789" } } },
    true,
  ],
];

const cidr: MatchCase[] = [
  ["IPv4 in /24 [docs]", { ip: [{ cidr: "10.0.0.0/24" }] }, { ip: "10.0.0.255" }, true],
  ["IPv4 outside /24 [aws content_ip_address_NEG]", { ip: [{ cidr: "10.0.0.0/24" }] }, { ip: "10.0.1.0" }, false],
  ["IPv4 /0 matches every IPv4 [ruler CIDR]", { ip: [{ cidr: "0.0.0.0/0" }] }, { ip: "255.255.255.255" }, true],
  ["odd prefix /23 [ruler CIDR]", { ip: [{ cidr: "192.168.2.0/23" }] }, { ip: "192.168.3.7" }, true],
  ["host bits are ignored [ruler CIDR.computeBottomBytes]", { ip: [{ cidr: "10.0.0.5/24" }] }, { ip: "10.0.0.1" }, true],
  ["host bits are ignored, outside [ruler CIDR]", { ip: [{ cidr: "10.0.0.5/24" }] }, { ip: "10.0.1.1" }, false],
  ["octet above 255 is not an IP [ruler]", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: "10.0.0.256" }, false],
  ["a number is not an IP [aws content_ip_address_bad_type_NEG]", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: 167772161 }, false],
  ["IPv6 value against an IPv4 cidr [ruler]", { ip: [{ cidr: "0.0.0.0/0" }] }, { ip: "::1" }, false],
  ["IPv4-mapped IPv6 value is IPv4 [ruler: Java InetAddress]", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: "::ffff:a00:1" }, true],
  ["IPv6 in /32 [aws content_ip_address_v6]", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:db8::1" }, true],
  ["IPv6 full form, upper case [ruler]", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:0DB8:FFFF:ffff:ffff:ffff:ffff:ffff" }, true],
  ["IPv6 outside [aws content_ip_address_v6_NEG]", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:db9::1" }, false],
  ["IPv6 host bits are ignored [ruler CIDR]", { ip: [{ cidr: "2001:db8::1/32" }] }, { ip: "2001:db8:ffff::" }, true],
  ["IPv6 /10 link-local [ruler]", { ip: [{ cidr: "fe80::/10" }] }, { ip: "febf::1" }, true],
  ["IPv6 /127 pair, outside [ruler]", { ip: [{ cidr: "2001:db8::/127" }] }, { ip: "2001:db8::2" }, false],
  ["malformed IPv6 value [ruler]", { ip: [{ cidr: "::/0" }] }, { ip: "1::2::3" }, false],
  ["a sign on the prefix length is read as Java does [ruler: Integer.parseInt]", { ip: [{ cidr: "10.0.0.0/+8" }] }, { ip: "10.9.9.9" }, true],
  ["one array element in range [ruler]", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: ["192.168.0.1", "10.1.1.1"] }, true],
];

const or: MatchCase[] = [
  ["top-level $or, second branch [docs]", { $or: [{ a: ["1"] }, { b: ["2"] }] }, { b: "2" }, true],
  ["top-level $or, no branch [aws complex_or_NEG]", { $or: [{ a: ["1"] }, { b: ["2"] }] }, { a: "2", b: "1" }, false],
  ["$or AND a sibling field [docs]", { source: ["cw"], $or: [{ m: ["cpu"] }, { ns: ["ec2"] }] }, { source: "cw", ns: "ec2" }, true],
  ["$or AND a sibling field fails [docs]", { source: ["cw"], $or: [{ m: ["cpu"] }, { ns: ["ec2"] }] }, { source: "s3", ns: "ec2" }, false],
  ["AND inside a branch [ruler README]", { $or: [{ a: ["1"], b: ["2"] }, { c: ["3"] }] }, { a: "1", b: "x" }, false],
  ["$or inside detail [ruler README]", { detail: { $or: [{ s: ["x"] }, { t: ["y"] }] } }, { detail: { t: "y" } }, true],
  ["$or inside detail does not see the top level [ruler]", { detail: { $or: [{ s: ["x"] }, { t: ["y"] }] } }, { t: "y", detail: {} }, false],
  [
    "parallel $or at two levels [ruler README]",
    { $or: [{ a: ["1"] }, { b: ["1"] }], detail: { $or: [{ c: ["1"] }, { d: ["1"] }] } },
    { b: "1", detail: { c: "1" } },
    true,
  ],
  ["$or inside $or [ruler README]", { $or: [{ a: ["1"] }, { b: ["2"], $or: [{ c: ["3"] }, { d: ["4"] }] }] }, { b: "2", d: "4" }, true],
  [
    "$or with content filters [aws or-numeric-anything-but]",
    { $or: [{ n: [{ numeric: [">", 5] }] }, { s: [{ "anything-but": "x" }] }] },
    { n: 1, s: "y" },
    true,
  ],
  [
    "$or with content filters, neither [aws or-numeric-anything-but_NEG]",
    { $or: [{ n: [{ numeric: [">", 5] }] }, { s: [{ "anything-but": "x" }] }] },
    { n: 1, s: "x" },
    false,
  ],
  ["a field in a branch replaces the same field outside [ruler: rule overriding]", { a: ["1"], $or: [{ a: ["2"] }, { b: ["3"] }] }, { a: "2" }, true],
  ["the replaced outside value no longer matches in that branch [ruler: rule overriding]", { a: ["1"], $or: [{ a: ["2"] }, { b: ["3"] }] }, { a: "1" }, false],
  ["other branches keep the outside field [ruler: rule overriding]", { a: ["1"], $or: [{ a: ["2"] }, { b: ["3"] }] }, { a: "1", b: "3" }, true],
  ["a field after $or replaces it in every branch [ruler: document order]", { $or: [{ a: ["2"] }, { b: ["3"] }], a: ["1"] }, { a: "2" }, false],
  ["$or that is not an array is a field name [ruler README: backward compatibility]", { $or: { a: ["x"] } }, { $or: { a: "x" } }, true],
  ["$or with match values is a field name [ruler: pre-$or compiler]", { $or: ["x", "y"] }, { $or: "y" }, true],
];

const whole: MatchCase[] = [
  ["empty pattern matches any object [ours]", {}, { anything: 1 }, true],
  ["empty pattern matches a non-object event [ours]", {}, 42, true],
  ["non-object event matches no field [ours]", { a: ["1"] }, "a", false],
  ["array event matches no field [ours]", { a: ["1"] }, [{ a: "1" }], false],
  [
    "EventBridge complex example [docs]",
    {
      time: [{ prefix: "2017-10-02" }],
      detail: {
        state: [{ "anything-but": "initializing" }],
        "c-count": [{ numeric: [">", 0, "<=", 5] }],
        "d-count": [{ numeric: ["<", 10] }],
        "x-limit": [{ "anything-but": [100, 200, 300] }],
        "source-ip": [{ cidr: "10.0.0.0/8" }],
      },
    },
    { time: "2017-10-02T16:24:49Z", detail: { "c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33", state: "running" } },
    true,
  ],
];

const groups: Record<string, MatchCase[]> = { numeric, exists, cidr, $or: or, "whole pattern": whole };

for (const [group, cases] of Object.entries(groups)) {
  describe(`matching: ${group}`, () => {
    for (const [name, pattern, event, expected] of cases) {
      it(`${name} -> ${expected ? "match" : "no match"}`, () => {
        expect(testPattern(pattern, event)).toBe(expected);
      });
    }
  });
}
