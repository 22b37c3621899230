import { describe, expect, it } from "bun:test";
import { testPattern } from "../../../outbox/pattern/index.ts";

/**
 * [name, pattern, event, expected match]. Each name ends with its source in brackets:
 * [docs] the EventBridge user guide (content filtering / comparison operators / arrays / null values),
 * [ruler] event-ruler's README or code (JsonRuleCompiler, ByteMachine, StructuredFinder, CIDR),
 * [aws] a case recorded against the real service with TestEventPattern (LocalStack's validated
 * event_pattern_templates, file named), [ours] a choice of this project where AWS is silent.
 */
type MatchCase = readonly [string, unknown, unknown, boolean];

const exact: MatchCase[] = [
  ["string equal [docs]", { source: ["orders"] }, { source: "orders" }, true],
  ["string differs [docs]", { source: ["orders"] }, { source: "users" }, false],
  ["string is case-sensitive [docs]", { source: ["orders"] }, { source: "Orders" }, false],
  ["field names are case-sensitive [aws key_case_sensitive_NEG]", { Source: ["orders"] }, { source: "orders" }, false],
  ["any listed value matches (OR) [docs]", { source: ["a", "b", "c"] }, { source: "b" }, true],
  ["empty string matches empty string [docs null values]", { v: [""] }, { v: "" }, true],
  ["empty string does not match null [docs null values]", { v: [""] }, { v: null }, false],
  ["empty string does not match a missing field [docs null values]", { v: [""] }, {}, false],
  ["null matches JSON null [docs null values]", { v: [null] }, { v: null }, true],
  ["null does not match a missing field [docs null values]", { v: [null] }, {}, false],
  ["null does not match the string null [ruler]", { v: [null] }, { v: "null" }, false],
  ["true matches true [aws boolean]", { ok: [true] }, { ok: true }, true],
  ["true does not match false [aws boolean_NEG]", { ok: [true] }, { ok: false }, false],
  ["true does not match the string true [ruler]", { ok: [true] }, { ok: "true" }, false],
  ["number equal [ruler]", { n: [5] }, { n: 5 }, true],
  ["300 equals 300.0 [aws number_comparison_float]", { n: [300] }, { n: 300.0 }, true],
  ["5 equals 5e0 [ruler ComparableNumber]", { n: [5] }, { n: 5 }, true],
  ["3.018e2 equals 301.8 [ruler README]", { n: [3.018e2] }, { n: 301.8 }, true],
  ["1 equals 1.0 [ruler ComparableNumber]", { n: [1] }, { n: 1.0 }, true],
  ["0 equals -0 (BigDecimal has no negative zero) [ruler]", { n: [0] }, { n: -0 }, true],
  ["a 12-digit account number [ruler JsonRuleCompilerTest]", { account: [123456789012] }, { account: 123456789012 }, true],
  ["number does not match numeric string [aws numeric-string_NEG]", { n: [5] }, { n: "5" }, false],
  ["string does not match number [ruler]", { n: ["5"] }, { n: 5 }, false],
  ["number does not match null [aws numeric-null_NEG]", { n: [5] }, { n: null }, false],
  ["mixed-type value list [docs]", { v: ["x", 1, true, null] }, { v: true }, true],
  ["unicode compares exactly [ruler]", { v: ["café"] }, { v: "café" }, true],
  ["unicode NFC and NFD differ [ruler: byte comparison]", { v: ["caf\u00e9"] }, { v: "cafe\u0301" }, false],
  ["emoji match exactly [ruler]", { v: ["🚀 go"] }, { v: "🚀 go" }, true],
  ["missing field never matches a value [docs]", { source: ["orders"] }, { other: "orders" }, false],
  ["object value is not a leaf [docs]", { detail: ["x"] }, { detail: { a: "x" } }, false],
  ["extra event fields are ignored [docs]", { a: ["1"] }, { a: "1", b: "2", c: { d: 3 } }, true],
  ["all fields must match (AND) [docs]", { a: ["1"], b: ["2"] }, { a: "1", b: "3" }, false],
  ["IPv4 literal matches the same address [ruler CIDR.ipToRangeIfPossible]", { ip: ["10.0.0.1"] }, { ip: "10.0.0.1" }, true],
  ["IPv6 literal matches another spelling [ruler CIDR.ipToRangeIfPossible]", { ip: ["2001:db8::1"] }, { ip: "2001:DB8:0:0:0:0:0:1" }, true],
  ["IPv4-mapped IPv6 is the IPv4 address [ruler: Java InetAddress]", { ip: ["10.0.0.1"] }, { ip: "::ffff:a00:1" }, true],
  ["IPv4 literal does not match another address [ruler]", { ip: ["10.0.0.1"] }, { ip: "10.0.0.2" }, false],
  ["exactly matches the same string [ruler JsonRuleCompiler]", { v: [{ exactly: "a.b" }] }, { v: "a.b" }, true],
  ["exactly is case-sensitive [ruler]", { v: [{ exactly: "abc" }] }, { v: "ABC" }, false],
  ["exactly never matches a number [ruler]", { v: [{ exactly: "5" }] }, { v: 5 }, false],
  ["prototype names are not inherited fields [ours]", { constructor: ["x"] }, {}, false],
  ["own __proto__ field from JSON.parse [ours]", { ["__proto__"]: ["x"] }, JSON.parse('{"__proto__":"x"}'), true],
];

const arrays: MatchCase[] = [
  ["event array intersects pattern values [docs arrays]", { resources: ["arn:b"] }, { resources: ["arn:a", "arn:b"] }, true],
  ["event array disjoint from pattern values [docs arrays]", { resources: ["arn:z"] }, { resources: ["arn:a", "arn:b"] }, false],
  ["empty event array matches no value [aws arrays_empty_null_NEG]", { resources: ["arn:a"] }, { resources: [] }, false],
  ["nested event arrays are flattened [ruler]", { v: [3] }, { v: [[1, 2], [[3]]] }, true],
  ["numeric filter over an array [ruler]", { v: [{ numeric: [">", 10] }] }, { v: [1, 2, 11] }, true],
  ["objects inside a leaf array are other paths [ruler]", { v: ["x"] }, { v: [{ v: "x" }, "y"] }, false],
  ["nested pattern over an array of objects [ruler README]", { employees: { first: ["Anna"] } }, { employees: [{ first: "John" }, { first: "Anna" }] }, true],
  [
    "fields must come from the same element [ruler README]",
    { employees: { first: ["Anna"], last: ["Jones"] } },
    {
      employees: [
        { first: "Anna", last: "Smith" },
        { first: "Peter", last: "Jones" },
      ],
    },
    false,
  ],
  [
    "same element matches [ruler README]",
    { employees: { first: ["Anna"], last: ["Smith"] } },
    {
      employees: [
        { first: "Anna", last: "Smith" },
        { first: "Peter", last: "Jones" },
      ],
    },
    true,
  ],
  ["multi-level arrays are crushed [ruler README]", { e: { n: ["Peter"] } }, { e: [[{ n: "John" }], [{ n: "Peter" }]] }, true],
  ["sibling arrays are independent [ruler StructuredFinder]", { a: { x: ["1"] }, b: { y: ["2"] } }, { a: [{ x: "0" }, { x: "1" }], b: [{ y: "2" }] }, true],
  ["a value in a scalar list is no array element [ruler Event]", { a: { tags: ["x"], id: ["1"] } }, { a: [{ id: "1", tags: ["y", "x"] }] }, true],
  ["inner arrays must agree too [ruler ArrayMembership]", { a: { b: { c: ["1"], d: ["2"] } } }, { a: [{ b: [{ c: "1" }, { d: "2" }] }] }, false],
  [
    "exists in one element of an array [aws list_within_dict]",
    { detail: { items: { id: [{ exists: true }] } } },
    { detail: { items: [{ k: "a" }, { id: "b" }] } },
    true,
  ],
];

const paths: MatchCase[] = [
  ["nested object matches [docs]", { detail: { state: ["running"] } }, { detail: { state: "running" } }, true],
  ["nested parent missing [docs]", { detail: { state: ["running"] } }, {}, false],
  ["nested parent is a string [docs]", { detail: { state: ["running"] } }, { detail: "running" }, false],
  ["deep nesting [docs]", { a: { b: { c: { d: [1] } } } }, { a: { b: { c: { d: 1 } } } }, true],
  ["dotted pattern key is a path [aws dot_joining_pattern]", { detail: { "state.status": ["running"] } }, { detail: { state: { status: "running" } } }, true],
  ["dotted event key is a path [aws dot_joining_event]", { detail: { state: { status: ["running"] } } }, { detail: { "state.status": "running" } }, true],
  [
    "dotted key still needs the leaf [aws dot_joining_event_NEG]",
    { detail: { state: { status: ["running"] } } },
    { detail: { "state.status": { status: "running" } } },
    false,
  ],
  ["dotted key matches literally [ruler]", { "a.b": ["x"] }, { "a.b": "x" }, true],
  ["leaf and object at one path both hold [ruler: paths are separate keys]", { a: ["x"], "a.b": ["y"] }, { a: "x", "a.b": "y" }, true],
  ["a later leaf at the same path replaces the earlier [ruler rule overriding]", { a: { b: ["1"] }, "a.b": ["2"] }, { a: { b: "2" } }, true],
  ["the replaced leaf no longer applies [ruler rule overriding]", { a: { b: ["1"] }, "a.b": ["2"] }, { a: { b: "1" } }, false],
];

const prefix: MatchCase[] = [
  ["prefix matches [docs]", { time: [{ prefix: "2017-10-02" }] }, { time: "2017-10-02T18:43:48Z" }, true],
  ["prefix does not match [aws content_prefix_NEG]", { time: [{ prefix: "2017-10-02" }] }, { time: "2017-10-03T00:00:00Z" }, false],
  ["prefix is case-sensitive [docs]", { s: [{ prefix: "Ev" }] }, { s: "eventbridge" }, false],
  ["prefix only applies to strings [docs]", { n: [{ prefix: "1" }] }, { n: 123 }, false],
  ["empty prefix matches any string [aws content_prefix_empty]", { s: [{ prefix: "" }] }, { s: "anything" }, true],
  ["empty prefix does not match null [ruler]", { s: [{ prefix: "" }] }, { s: null }, false],
  ["prefix longer than value [ruler]", { s: [{ prefix: "abcd" }] }, { s: "abc" }, false],
  ["prefix of unicode text [ruler]", { s: [{ prefix: "Zürich" }] }, { s: "Zürich-1" }, true],
  ["prefix ignore case [docs]", { s: [{ prefix: { "equals-ignore-case": "EventB" } }] }, { s: "eventbridge" }, true],
  ["prefix ignore case, upper-case event [aws content_prefix_ignorecase]", { s: [{ prefix: { "equals-ignore-case": "eventb" } }] }, { s: "EVENTBRIDGE" }, true],
  ["prefix ignore case mismatch [ruler]", { s: [{ prefix: { "equals-ignore-case": "eventb" } }] }, { s: "xeventb" }, false],
  ["prefix ignore case, regex characters are literal [ours]", { s: [{ prefix: { "equals-ignore-case": "a.(" } }] }, { s: "A.(z" }, true],
];

const suffix: MatchCase[] = [
  ["suffix matches [docs]", { file: [{ suffix: ".png" }] }, { file: "cat.png" }, true],
  ["suffix does not match [aws content_suffix_NEG]", { file: [{ suffix: ".png" }] }, { file: "cat.jpg" }, false],
  ["suffix is case-sensitive [docs]", { file: [{ suffix: ".png" }] }, { file: "cat.PNG" }, false],
  ["suffix only applies to strings [docs]", { n: [{ suffix: "3" }] }, { n: 123 }, false],
  ["empty suffix matches any string [aws content_suffix_empty]", { f: [{ suffix: "" }] }, { f: "x" }, true],
  ["suffix ignore case [docs]", { file: [{ suffix: { "equals-ignore-case": ".png" } }] }, { file: "CAT.PNG" }, true],
  ["suffix ignore case mismatch [aws content_suffix_ignorecase_NEG]", { file: [{ suffix: { "equals-ignore-case": ".png" } }] }, { file: "cat.png.gz" }, false],
  ["suffix ignore case, mixed case [docs]", { s: [{ suffix: { "equals-ignore-case": "tBridge" } }] }, { s: "EventBRIDGE" }, true],
  [
    "suffix ignore case, longer upper form [ruler EqualsIgnoreCaseParser]",
    { s: [{ suffix: { "equals-ignore-case": "straße" } }] },
    { s: "HAUPTSTRASSE" },
    true,
  ],
];

const equalsIgnoreCase: MatchCase[] = [
  ["equals-ignore-case [docs]", { name: [{ "equals-ignore-case": "alice" }] }, { name: "ALICE" }, true],
  ["mixed case both sides [aws content_ignorecase]", { name: [{ "equals-ignore-case": "AlIcE" }] }, { name: "aLiCe" }, true],
  ["whole value only [aws content_ignorecase_NEG]", { name: [{ "equals-ignore-case": "alice" }] }, { name: "alice2" }, false],
  ["empty matches empty [aws content_ignorecase_empty]", { v: [{ "equals-ignore-case": "" }] }, { v: "" }, true],
  ["empty does not match text [aws content_ignorecase_empty_NEG]", { v: [{ "equals-ignore-case": "" }] }, { v: "x" }, false],
  ["accented letters fold [ruler EqualsIgnoreCaseParser]", { name: [{ "equals-ignore-case": "école" }] }, { name: "ÉCOLE" }, true],
  ["ß matches its upper case SS [ruler: Java toUpperCase]", { v: [{ "equals-ignore-case": "straße" }] }, { v: "STRASSE" }, true],
  ["capital ẞ is neither form of ß [ruler: Java toUpperCase]", { v: [{ "equals-ignore-case": "ß" }] }, { v: "ẞ" }, false],
  ["final sigma is neither form of Σ [ruler: Java toLowerCase]", { v: [{ "equals-ignore-case": "Σ" }] }, { v: "ς" }, false],
  ["Kelvin sign is not k [ruler: lower/upper only]", { v: [{ "equals-ignore-case": "k" }] }, { v: "\u212a" }, false],
  ["astral characters compare as themselves [ours]", { v: [{ "equals-ignore-case": "a😀" }] }, { v: "A😀" }, true],
  ["regex characters are literal [ours]", { v: [{ "equals-ignore-case": "a.b" }] }, { v: "axb" }, false],
  ["only strings [docs]", { v: [{ "equals-ignore-case": "true" }] }, { v: true }, false],
];

const wildcard: MatchCase[] = [
  ["star in the middle [docs]", { s: [{ wildcard: "Simple*Service" }] }, { s: "SimpleQueueService" }, true],
  ["star matches the empty run [ruler]", { s: [{ wildcard: "Simple*Service" }] }, { s: "SimpleService" }, true],
  ["star mismatch [ruler]", { s: [{ wildcard: "Simple*Service" }] }, { s: "SimpleQueue" }, false],
  ["path with two stars [aws content_wildcard_nonrepeating]", { f: [{ wildcard: "/Users/*/doc.txt" }] }, { f: "/Users/ann/doc.txt" }, true],
  [
    "repeating sequences after a star [aws content_wildcard_repeating]",
    { f: [{ wildcard: "/Users/*/dir/dir/dir/dir/dir/doc.txt" }] },
    { f: "/Users/x/dir/dir/dir/dir/dir/doc.txt" },
    true,
  ],
  [
    "repeating sequences, one short [aws content_wildcard_repeating_NEG]",
    { f: [{ wildcard: "/Users/*/dir/dir/dir/dir/dir/doc.txt" }] },
    { f: "/Users/x/dir/dir/dir/dir/doc.txt" },
    false,
  ],
  ["empty wildcard matches only the empty string [aws content_wildcard_empty_NEG]", { s: [{ wildcard: "" }] }, { s: "x" }, false],
  ["lone star matches any string [ruler]", { s: [{ wildcard: "*" }] }, { s: "" }, true],
  ["lone star does not match numbers [docs]", { s: [{ wildcard: "*" }] }, { s: 1 }, false],
  ["anchors may not overlap [ruler]", { f: [{ wildcard: "ab*ba" }] }, { f: "aba" }, false],
  ["escaped star is literal [ruler README]", { f: [{ wildcard: "a\\*b" }] }, { f: "a*b" }, true],
  ["escaped star does not glob [ruler README]", { f: [{ wildcard: "a\\*b" }] }, { f: "axb" }, false],
  ["escaped backslash [ruler README]", { f: [{ wildcard: "a\\\\*" }] }, { f: "a\\zz" }, true],
  ["regex characters are literal [ruler]", { f: [{ wildcard: "a.c*" }] }, { f: "abc" }, false],
  ["case-sensitive [ruler]", { f: [{ wildcard: "A*" }] }, { f: "abc" }, false],
  ["unicode around a star [ruler]", { f: [{ wildcard: "é*ü" }] }, { f: "éxxü" }, true],
];

const anythingBut: MatchCase[] = [
  ["other string [docs]", { state: [{ "anything-but": "initializing" }] }, { state: "running" }, true],
  ["excluded string [aws content_anything_but_string_NEG]", { state: [{ "anything-but": "initializing" }] }, { state: "initializing" }, false],
  ["missing field [aws content_anything_but_string_missing_NEG]", { state: [{ "anything-but": "x" }] }, {}, false],
  ["null is anything but a string [aws content_anything_but_string_null]", { state: [{ "anything-but": "x" }] }, { state: null }, true],
  ["a number is anything but a string [ruler ByteMachine]", { state: [{ "anything-but": "x" }] }, { state: 5 }, true],
  ["object value has no leaf [ruler]", { state: [{ "anything-but": "x" }] }, { state: { a: 1 } }, false],
  ["string list, other value [docs]", { s: [{ "anything-but": ["stopped", "overloaded"] }] }, { s: "running" }, true],
  [
    "string list, excluded value [aws content_anything_but_string_list_NEG]",
    { s: [{ "anything-but": ["stopped", "overloaded"] }] },
    { s: "overloaded" },
    false,
  ],
  ["number, other number [docs]", { x: [{ "anything-but": 123 }] }, { x: 124 }, true],
  ["number, excluded [aws content_anything_but_number_NEG]", { x: [{ "anything-but": 123 }] }, { x: 123 }, false],
  ["zero, other number [aws content_anything_but_number_zero]", { x: [{ "anything-but": 0 }] }, { x: 1 }, true],
  ["number list excludes numerically [docs]", { x: [{ "anything-but": [100, 200, 300] }] }, { x: 200.0 }, false],
  ["number list, other number [docs]", { x: [{ "anything-but": [100, 200, 300] }] }, { x: 301.8 }, true],
  ["number list lets numeric strings through [ruler]", { x: [{ "anything-but": [100] }] }, { x: "100" }, true],
  ["prefix, other start [docs]", { r: [{ "anything-but": { prefix: "us-" } }] }, { r: "eu-west-1" }, true],
  ["prefix, excluded start [aws content_anything_prefix_NEG]", { r: [{ "anything-but": { prefix: "us-" } }] }, { r: "us-east-1" }, false],
  ["prefix list, other start [aws content_anything_prefix_list]", { s: [{ "anything-but": { prefix: ["init", "test"] } }] }, { s: "post-init" }, true],
  ["prefix list, excluded start [aws content_anything_prefix_list_NEG]", { s: [{ "anything-but": { prefix: ["init", "test"] } }] }, { s: "testing" }, false],
  ["prefix list lets numbers through [aws content_anything_prefix_list_int]", { s: [{ "anything-but": { prefix: ["init", "test"] } }] }, { s: 12 }, true],
  ["prefix list lets null through [aws content_anything_prefix_list_null]", { s: [{ "anything-but": { prefix: ["init", "test"] } }] }, { s: null }, true],
  ["prefix list, missing field [aws content_anything_prefix_list_missing_NEG]", { s: [{ "anything-but": { prefix: ["init"] } }] }, {}, false],
  ["suffix, other end [docs]", { f: [{ "anything-but": { suffix: ".png" } }] }, { f: "a.jpg" }, true],
  ["suffix, excluded end [aws content_anything_suffix_NEG]", { f: [{ "anything-but": { suffix: ".png" } }] }, { f: "a.png" }, false],
  ["suffix list, other end [aws content_anything_suffix_list]", { f: [{ "anything-but": { suffix: [".png", ".gif"] } }] }, { f: "a.jpg" }, true],
  ["suffix list, excluded end [aws content_anything_suffix_list_NEG]", { f: [{ "anything-but": { suffix: [".png", ".gif"] } }] }, { f: "a.gif" }, false],
  ["suffix list lets null through [aws content_anything_suffix_list_null]", { f: [{ "anything-but": { suffix: [".png"] } }] }, { f: null }, true],
  ["ignore case, any casing excluded [docs]", { s: [{ "anything-but": { "equals-ignore-case": "initializing" } }] }, { s: "INITIALIZING" }, false],
  [
    "ignore case, other value [aws content_anything_but_ignorecase]",
    { s: [{ "anything-but": { "equals-ignore-case": "initializing" } }] },
    { s: "running" },
    true,
  ],
  ["ignore case list [aws content_anything_but_ignorecase_list_NEG]", { s: [{ "anything-but": { "equals-ignore-case": ["a", "b"] } }] }, { s: "B" }, false],
  ["ignore case lets null through [aws content_anything_but_ignorecase_null]", { s: [{ "anything-but": { "equals-ignore-case": "x" } }] }, { s: null }, true],
  ["ignore case of the empty string [ruler JsonRuleCompilerTest]", { s: [{ "anything-but": { "equals-ignore-case": "" } }] }, { s: "" }, false],
  ["wildcard, excluded path [docs]", { p: [{ "anything-but": { wildcard: "*/lib/*" } }] }, { p: "/usr/lib/x" }, false],
  ["wildcard, other path [aws content_anything_wildcard]", { p: [{ "anything-but": { wildcard: "*/lib/*" } }] }, { p: "/usr/bin/x" }, true],
  ["wildcard list [aws content_anything_wildcard_list_NEG]", { p: [{ "anything-but": { wildcard: ["*/init/*", "*/dir/*"] } }] }, { p: "/a/dir/b" }, false],
  ["wildcard lets numbers through [aws content_anything_wildcard_int]", { p: [{ "anything-but": { wildcard: "*/lib/*" } }] }, { p: 5 }, true],
  ["empty wildcard excludes only the empty string [aws content_anything_wildcard_empty]", { p: [{ "anything-but": { wildcard: "" } }] }, { p: "x" }, true],
  ["event array: one element not excluded [ruler]", { s: [{ "anything-but": "a" }] }, { s: ["a", "b"] }, true],
  ["event array: every element excluded [ruler]", { s: [{ "anything-but": "a" }] }, { s: ["a", "a"] }, false],
  ["empty event array has no value [ruler]", { s: [{ "anything-but": "a" }] }, { s: [] }, false],
];

const groups: Record<string, MatchCase[]> = {
  "exact values": exact,
  "event arrays": arrays,
  paths: paths,
  prefix,
  suffix,
  "equals-ignore-case": equalsIgnoreCase,
  wildcard,
  "anything-but": anythingBut,
};

for (const [group, cases] of Object.entries(groups)) {
  describe(`matching: ${group}`, () => {
    for (const [name, pattern, event, expected] of cases) {
      it(`${name} -> ${expected ? "match" : "no match"}`, () => {
        expect(testPattern(pattern, event)).toBe(expected);
      });
    }
  });
}
