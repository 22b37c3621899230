import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { compilePattern, InvalidPatternError, testPattern } from "../../outbox/pattern/index.ts";

/** [name, pattern, event, expected match] */
type MatchCase = readonly [string, unknown, unknown, boolean];

const exact: MatchCase[] = [
  ["string equal", { source: ["orders"] }, { source: "orders" }, true],
  ["string differs", { source: ["orders"] }, { source: "users" }, false],
  ["string is case-sensitive", { source: ["orders"] }, { source: "Orders" }, false],
  ["any listed value matches (OR)", { source: ["a", "b", "c"] }, { source: "b" }, true],
  ["none of the listed values", { source: ["a", "b"] }, { source: "z" }, false],
  ["number equal", { n: [5] }, { n: 5 }, true],
  ["number compares numerically (5 vs 5.0)", { n: [5.0] }, { n: 5 }, true],
  ["number compares numerically (3.018e2 vs 301.8)", { n: [3.018e2] }, { n: 301.8 }, true],
  ["zero equals negative zero", { n: [0] }, { n: -0 }, true],
  ["number does not match numeric string", { n: [5] }, { n: "5" }, false],
  ["string does not match number", { n: ["5"] }, { n: 5 }, false],
  ["true matches true", { ok: [true] }, { ok: true }, true],
  ["true does not match false", { ok: [true] }, { ok: false }, false],
  ["false matches false", { ok: [false] }, { ok: false }, true],
  ["true does not match string true", { ok: [true] }, { ok: "true" }, false],
  ["null matches JSON null", { v: [null] }, { v: null }, true],
  ["null does not match a missing field", { v: [null] }, {}, false],
  ["null does not match empty string", { v: [null] }, { v: "" }, false],
  ["empty string matches empty string", { v: [""] }, { v: "" }, true],
  ["empty string does not match null", { v: [""] }, { v: null }, false],
  ["missing field never matches a value", { source: ["orders"] }, { other: "orders" }, false],
  ["object value is not a leaf", { detail: ["x"] }, { detail: { a: "x" } }, false],
  ["extra event fields are ignored", { a: ["1"] }, { a: "1", b: "2", c: { d: 3 } }, true],
  ["all fields must match (AND)", { a: ["1"], b: ["2"] }, { a: "1", b: "3" }, false],
  ["all fields match (AND)", { a: ["1"], b: ["2"] }, { a: "1", b: "2" }, true],
  ["mixed-type value list", { v: ["x", 1, true, null] }, { v: true }, true],
  ["IPv6 literal matches another spelling of the address", { ip: ["2001:db8::1"] }, { ip: "2001:DB8:0:0:0:0:0:1" }, true],
  ["IPv4 literal does not match another address", { ip: ["10.0.0.1"] }, { ip: "10.0.0.2" }, false],
  ["prototype names are not inherited fields", { constructor: ["x"] }, {}, false],
  ["own __proto__ field from JSON.parse", { ["__proto__"]: ["x"] }, JSON.parse('{"__proto__":"x"}'), true],
];

const arrays: MatchCase[] = [
  ["event array intersects pattern values", { resources: ["arn:b"] }, { resources: ["arn:a", "arn:b"] }, true],
  ["event array disjoint from pattern values", { resources: ["arn:z"] }, { resources: ["arn:a", "arn:b"] }, false],
  ["empty event array matches no value", { resources: ["arn:a"] }, { resources: [] }, false],
  ["nested event arrays are flattened", { v: [3] }, { v: [[1, 2], [[3]]] }, true],
  ["array of numbers with numeric filter", { v: [{ numeric: [">", 10] }] }, { v: [1, 2, 11] }, true],
  ["array of numbers none in range", { v: [{ numeric: [">", 10] }] }, { v: [1, 2, 3] }, false],
  ["objects inside a leaf array are skipped", { v: ["x"] }, { v: [{ v: "x" }, "y"] }, false],
  ["prefix over array elements", { v: [{ prefix: "ab" }] }, { v: ["zz", "abc"] }, true],
  ["nested pattern matches an object in an event array", { employees: { first: ["Anna"] } }, { employees: [{ first: "John" }, { first: "Anna" }] }, true],
  ["array-consistent: fields must come from the same element", { employees: { first: ["Anna"], last: ["Jones"] } }, { employees: [{ first: "Anna", last: "Smith" }, { first: "Peter", last: "Jones" }] }, false],
  ["array-consistent: same element matches", { employees: { first: ["Anna"], last: ["Smith"] } }, { employees: [{ first: "Anna", last: "Smith" }, { first: "Peter", last: "Jones" }] }, true],
  ["multi-level arrays of objects", { e: { n: ["Peter"] } }, { e: [[{ n: "John" }], [{ n: "Peter" }]] }, true],
];

const nested: MatchCase[] = [
  ["nested object matches", { detail: { state: ["running"] } }, { detail: { state: "running" } }, true],
  ["nested value differs", { detail: { state: ["running"] } }, { detail: { state: "stopped" } }, false],
  ["nested parent missing", { detail: { state: ["running"] } }, {}, false],
  ["nested parent is a string", { detail: { state: ["running"] } }, { detail: "running" }, false],
  ["nested parent is null", { detail: { state: ["running"] } }, { detail: null }, false],
  ["deep nesting", { a: { b: { c: { d: [1] } } } }, { a: { b: { c: { d: 1 } } } }, true],
  ["deep nesting mismatch", { a: { b: { c: { d: [1] } } } }, { a: { b: { c: { d: 2 } } } }, false],
  ["dotted key is not a path", { "a.b": ["x"] }, { a: { b: "x" } }, false],
  ["dotted key matches literally", { "a.b": ["x"] }, { "a.b": "x" }, true],
];

const prefix: MatchCase[] = [
  ["prefix matches", { time: [{ prefix: "2017-10-02" }] }, { time: "2017-10-02T18:43:48Z" }, true],
  ["prefix does not match", { time: [{ prefix: "2017-10-02" }] }, { time: "2017-10-03T00:00:00Z" }, false],
  ["prefix is case-sensitive", { s: [{ prefix: "Ev" }] }, { s: "eventbridge" }, false],
  ["prefix only applies to strings", { n: [{ prefix: "1" }] }, { n: 123 }, false],
  ["empty prefix matches any string", { s: [{ prefix: "" }] }, { s: "anything" }, true],
  ["prefix equal to whole value", { s: [{ prefix: "abc" }] }, { s: "abc" }, true],
  ["prefix longer than value", { s: [{ prefix: "abcd" }] }, { s: "abc" }, false],
  ["prefix ignore case matches", { s: [{ prefix: { "equals-ignore-case": "EventB" } }] }, { s: "eventbridge" }, true],
  ["prefix ignore case upper event", { s: [{ prefix: { "equals-ignore-case": "eventb" } }] }, { s: "EVENTBRIDGE" }, true],
  ["prefix ignore case mismatch", { s: [{ prefix: { "equals-ignore-case": "eventb" } }] }, { s: "xeventb" }, false],
  ["prefix regex characters are literal", { s: [{ prefix: { "equals-ignore-case": "a.(" } }] }, { s: "A.(z" }, true],
];

const suffix: MatchCase[] = [
  ["suffix matches", { file: [{ suffix: ".png" }] }, { file: "cat.png" }, true],
  ["suffix does not match", { file: [{ suffix: ".png" }] }, { file: "cat.jpg" }, false],
  ["suffix is case-sensitive", { file: [{ suffix: ".png" }] }, { file: "cat.PNG" }, false],
  ["suffix only applies to strings", { n: [{ suffix: "3" }] }, { n: 123 }, false],
  ["suffix ignore case matches", { file: [{ suffix: { "equals-ignore-case": ".png" } }] }, { file: "CAT.PNG" }, true],
  ["suffix ignore case mismatch", { file: [{ suffix: { "equals-ignore-case": ".png" } }] }, { file: "cat.png.gz" }, false],
];

const equalsIgnoreCase: MatchCase[] = [
  ["equals-ignore-case matches", { name: [{ "equals-ignore-case": "alice" }] }, { name: "ALICE" }, true],
  ["equals-ignore-case mixed case", { name: [{ "equals-ignore-case": "AlIcE" }] }, { name: "aLiCe" }, true],
  ["equals-ignore-case is whole-value", { name: [{ "equals-ignore-case": "alice" }] }, { name: "alice2" }, false],
  ["equals-ignore-case unicode", { name: [{ "equals-ignore-case": "école" }] }, { name: "ÉCOLE" }, true],
  ["equals-ignore-case regex characters are literal", { v: [{ "equals-ignore-case": "a.b" }] }, { v: "axb" }, false],
  ["equals-ignore-case only applies to strings", { v: [{ "equals-ignore-case": "true" }] }, { v: true }, false],
];

const wildcard: MatchCase[] = [
  ["star in the middle", { s: [{ wildcard: "Simple*Service" }] }, { s: "SimpleQueueService" }, true],
  ["star matches the empty run", { s: [{ wildcard: "Simple*Service" }] }, { s: "SimpleService" }, true],
  ["star mismatch", { s: [{ wildcard: "Simple*Service" }] }, { s: "SimpleQueue" }, false],
  ["lone star matches any string", { s: [{ wildcard: "*" }] }, { s: "" }, true],
  ["lone star does not match numbers", { s: [{ wildcard: "*" }] }, { s: 1 }, false],
  ["leading star", { f: [{ wildcard: "*.png" }] }, { f: "dir/cat.png" }, true],
  ["trailing star", { f: [{ wildcard: "dir/*" }] }, { f: "dir/cat.png" }, true],
  ["several stars in order", { f: [{ wildcard: "a*b*c" }] }, { f: "axxbyyc" }, true],
  ["several stars out of order", { f: [{ wildcard: "a*b*c" }] }, { f: "acb" }, false],
  ["anchors may not overlap", { f: [{ wildcard: "ab*ba" }] }, { f: "aba" }, false],
  ["escaped star is literal", { f: [{ wildcard: "a\\*b" }] }, { f: "a*b" }, true],
  ["escaped star does not glob", { f: [{ wildcard: "a\\*b" }] }, { f: "axb" }, false],
  ["escaped star then wildcard", { f: [{ wildcard: "\\**" }] }, { f: "*abc" }, true],
  ["escaped backslash", { f: [{ wildcard: "a\\\\*" }] }, { f: "a\\zz" }, true],
  ["no star is exact equality", { f: [{ wildcard: "abc" }] }, { f: "abcd" }, false],
  ["regex characters are literal", { f: [{ wildcard: "a.c*" }] }, { f: "abc" }, false],
  ["wildcard is case-sensitive", { f: [{ wildcard: "A*" }] }, { f: "abc" }, false],
];

const anythingBut: MatchCase[] = [
  ["other string matches", { state: [{ "anything-but": "initializing" }] }, { state: "running" }, true],
  ["excluded string does not match", { state: [{ "anything-but": "initializing" }] }, { state: "initializing" }, false],
  ["missing field does not match", { state: [{ "anything-but": "initializing" }] }, {}, false],
  ["object value does not match", { state: [{ "anything-but": "x" }] }, { state: { a: 1 } }, false],
  ["excluded string lets numbers through (AWS)", { state: [{ "anything-but": "x" }] }, { state: 5 }, true],
  ["excluded string lets null through (AWS)", { state: [{ "anything-but": "x" }] }, { state: null }, true],
  ["string list: other value", { state: [{ "anything-but": ["stopped", "overloaded"] }] }, { state: "running" }, true],
  ["string list: excluded value", { state: [{ "anything-but": ["stopped", "overloaded"] }] }, { state: "overloaded" }, false],
  ["number: other number", { x: [{ "anything-but": 123 }] }, { x: 124 }, true],
  ["number: excluded number", { x: [{ "anything-but": 123 }] }, { x: 123 }, false],
  ["number list: excluded numerically", { x: [{ "anything-but": [100, 200, 300] }] }, { x: 200.0 }, false],
  ["number list: other number", { x: [{ "anything-but": [100, 200, 300] }] }, { x: 250 }, true],
  ["number list does not exclude numeric strings", { x: [{ "anything-but": [100] }] }, { x: "100" }, true],
  ["prefix: not starting with", { r: [{ "anything-but": { prefix: "us-" } }] }, { r: "eu-west-1" }, true],
  ["prefix: starting with", { r: [{ "anything-but": { prefix: "us-" } }] }, { r: "us-east-1" }, false],
  ["suffix: other ending", { f: [{ "anything-but": { suffix: ".png" } }] }, { f: "a.jpg" }, true],
  ["suffix: excluded ending", { f: [{ "anything-but": { suffix: ".png" } }] }, { f: "a.png" }, false],
  ["equals-ignore-case: excluded any casing", { s: [{ "anything-but": { "equals-ignore-case": "initializing" } }] }, { s: "INITIALIZING" }, false],
  ["equals-ignore-case: other value", { s: [{ "anything-but": { "equals-ignore-case": "initializing" } }] }, { s: "running" }, true],
  ["equals-ignore-case list", { s: [{ "anything-but": { "equals-ignore-case": ["a", "b"] } }] }, { s: "B" }, false],
  ["wildcard: excluded path", { p: [{ "anything-but": { wildcard: "*/lib/*" } }] }, { p: "/usr/lib/x" }, false],
  ["wildcard: other path", { p: [{ "anything-but": { wildcard: "*/lib/*" } }] }, { p: "/usr/bin/x" }, true],
  ["wildcard list", { p: [{ "anything-but": { wildcard: ["*.png", "*.jpg"] } }] }, { p: "a.jpg" }, false],
  ["event array: one element not excluded", { s: [{ "anything-but": "a" }] }, { s: ["a", "b"] }, true],
  ["event array: every element excluded", { s: [{ "anything-but": "a" }] }, { s: ["a", "a"] }, false],
  ["empty event array has no value", { s: [{ "anything-but": "a" }] }, { s: [] }, false],
];

const numeric: MatchCase[] = [
  ["greater than", { c: [{ numeric: [">", 0] }] }, { c: 1 }, true],
  ["greater than boundary", { c: [{ numeric: [">", 0] }] }, { c: 0 }, false],
  ["greater or equal boundary", { c: [{ numeric: [">=", 0] }] }, { c: 0 }, true],
  ["less than", { c: [{ numeric: ["<", 10] }] }, { c: 9.999 }, true],
  ["less than boundary", { c: [{ numeric: ["<", 10] }] }, { c: 10 }, false],
  ["less or equal boundary", { c: [{ numeric: ["<=", 10] }] }, { c: 10 }, true],
  ["equals", { x: [{ numeric: ["=", 3.018e2] }] }, { x: 301.8 }, true],
  ["equals mismatch", { x: [{ numeric: ["=", 3] }] }, { x: 3.0001 }, false],
  ["range inside", { c: [{ numeric: [">", 0, "<=", 5] }] }, { c: 5 }, true],
  ["range below", { c: [{ numeric: [">", 0, "<=", 5] }] }, { c: 0 }, false],
  ["range above", { c: [{ numeric: [">", 0, "<=", 5] }] }, { c: 5.5 }, false],
  ["closed range lower boundary", { c: [{ numeric: [">=", -1, "<", 1] }] }, { c: -1 }, true],
  ["negative numbers", { c: [{ numeric: ["<", -100] }] }, { c: -100.5 }, true],
  ["numeric string does not match", { c: [{ numeric: [">", 0] }] }, { c: "5" }, false],
  ["boolean does not match", { c: [{ numeric: [">", 0] }] }, { c: true }, false],
  ["missing field does not match", { c: [{ numeric: [">", 0] }] }, {}, false],
  ["OR of two ranges", { c: [{ numeric: ["<", 0] }, { numeric: [">", 100] }] }, { c: 101 }, true],
];

const exists: MatchCase[] = [
  ["exists true: present", { detail: { state: [{ exists: true }] } }, { detail: { state: "pending" } }, true],
  ["exists true: null is present", { s: [{ exists: true }] }, { s: null }, true],
  ["exists true: empty string is present", { s: [{ exists: true }] }, { s: "" }, true],
  ["exists true: missing", { detail: { state: [{ exists: true }] } }, { detail: { other: 1 } }, false],
  ["exists true: object is not a leaf", { detail: { c: [{ exists: true }] } }, { detail: { c: { c1: 100 } } }, false],
  ["exists true: empty array has no value", { s: [{ exists: true }] }, { s: [] }, false],
  ["exists true: array of objects has no leaf", { s: [{ exists: true }] }, { s: [{ a: 1 }] }, false],
  ["exists true: array with a value", { s: [{ exists: true }] }, { s: [1] }, true],
  ["exists false: missing", { c: [{ exists: false }] }, { other: 1 }, true],
  ["exists false: present", { c: [{ exists: false }] }, { c: 0 }, false],
  ["exists false: null is present", { c: [{ exists: false }] }, { c: null }, false],
  ["exists false: object value is not a leaf (AWS)", { detail: { c: [{ exists: false }] } }, { detail: { c: { c1: 100 } } }, true],
  ["exists false: empty array", { c: [{ exists: false }] }, { c: [] }, true],
  ["exists false: parent object missing", { detail: { c: [{ exists: false }] } }, {}, true],
  ["exists false: parent is a scalar", { detail: { c: [{ exists: false }] } }, { detail: "x" }, true],
  ["exists false: one array element lacks the field", { items: { c: [{ exists: false }] } }, { items: [{ c: 1 }, { d: 2 }] }, true],
  ["exists false: every array element has the field", { items: { c: [{ exists: false }] } }, { items: [{ c: 1 }] }, false],
  ["exists false OR value", { c: ["x", { exists: false }] }, { c: "x" }, true],
  ["exists false OR value: other value", { c: ["x", { exists: false }] }, { c: "y" }, false],
  ["exists false on a non-object event", { c: [{ exists: false }] }, "not an object", true],
];

const cidr: MatchCase[] = [
  ["IPv4 in /24", { ip: [{ cidr: "10.0.0.0/24" }] }, { ip: "10.0.0.255" }, true],
  ["IPv4 first address", { ip: [{ cidr: "10.0.0.0/24" }] }, { ip: "10.0.0.0" }, true],
  ["IPv4 outside /24", { ip: [{ cidr: "10.0.0.0/24" }] }, { ip: "10.0.1.0" }, false],
  ["IPv4 /8", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: "10.200.3.4" }, true],
  ["IPv4 /0 matches every IPv4", { ip: [{ cidr: "0.0.0.0/0" }] }, { ip: "255.255.255.255" }, true],
  ["IPv4 odd prefix /23", { ip: [{ cidr: "192.168.2.0/23" }] }, { ip: "192.168.3.7" }, true],
  ["IPv4 odd prefix /23 outside", { ip: [{ cidr: "192.168.2.0/23" }] }, { ip: "192.168.4.1" }, false],
  ["IPv4 top bit set", { ip: [{ cidr: "200.0.0.0/8" }] }, { ip: "200.1.2.3" }, true],
  ["octet above 255 is not an IP", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: "10.0.0.256" }, false],
  ["non-IP string", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: "hello" }, false],
  ["IP with trailing text", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: "10.0.0.1 " }, false],
  ["number is not an IP", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: 167772161 }, false],
  ["IPv6 value against IPv4 cidr", { ip: [{ cidr: "0.0.0.0/0" }] }, { ip: "::1" }, false],
  ["IPv6 in /32 (shorthand)", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:db8::1" }, true],
  ["IPv6 in /32 (full form)", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff" }, true],
  ["IPv6 upper-case hex", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:DB8:A::1" }, true],
  ["IPv6 outside /32", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:db9::1" }, false],
  ["IPv6 /10 link-local", { ip: [{ cidr: "fe80::/10" }] }, { ip: "febf::1" }, true],
  ["IPv6 /10 outside", { ip: [{ cidr: "fe80::/10" }] }, { ip: "fec0::1" }, false],
  ["IPv6 /127 pair", { ip: [{ cidr: "2001:db8::/127" }] }, { ip: "2001:db8::1" }, true],
  ["IPv6 /127 outside", { ip: [{ cidr: "2001:db8::/127" }] }, { ip: "2001:db8::2" }, false],
  ["IPv6 loopback in ::/0", { ip: [{ cidr: "::/0" }] }, { ip: "::1" }, true],
  ["IPv6 trailing ::", { ip: [{ cidr: "2001:db8::/32" }] }, { ip: "2001:db8::" }, true],
  ["IPv6 malformed triple colon", { ip: [{ cidr: "::/0" }] }, { ip: "2001:db8:::1" }, false],
  ["IPv6 too many groups", { ip: [{ cidr: "::/0" }] }, { ip: "1:2:3:4:5:6:7:8:9" }, false],
  ["IPv6 two :: is malformed", { ip: [{ cidr: "::/0" }] }, { ip: "1::2::3" }, false],
  ["IPv6 group longer than 4 hex digits", { ip: [{ cidr: "::/0" }] }, { ip: "12345::" }, false],
  ["IPv4 value against IPv6 cidr", { ip: [{ cidr: "::/0" }] }, { ip: "10.0.0.1" }, false],
  ["cidr over event array", { ip: [{ cidr: "10.0.0.0/8" }] }, { ip: ["192.168.0.1", "10.1.1.1"] }, true],
];

const or: MatchCase[] = [
  ["top-level $or first branch", { $or: [{ a: ["1"] }, { b: ["2"] }] }, { a: "1" }, true],
  ["top-level $or second branch", { $or: [{ a: ["1"] }, { b: ["2"] }] }, { b: "2" }, true],
  ["top-level $or no branch", { $or: [{ a: ["1"] }, { b: ["2"] }] }, { a: "2", b: "1" }, false],
  ["$or AND sibling field", { source: ["cw"], $or: [{ m: ["cpu"] }, { ns: ["ec2"] }] }, { source: "cw", ns: "ec2" }, true],
  ["$or AND sibling field fails", { source: ["cw"], $or: [{ m: ["cpu"] }, { ns: ["ec2"] }] }, { source: "s3", ns: "ec2" }, false],
  ["$or branch with several fields (AND inside)", { $or: [{ a: ["1"], b: ["2"] }, { c: ["3"] }] }, { a: "1", b: "x" }, false],
  ["$or nested in a detail object", { detail: { $or: [{ s: ["x"] }, { t: ["y"] }] } }, { detail: { t: "y" } }, true],
  ["$or nested in detail does not see top level", { detail: { $or: [{ s: ["x"] }, { t: ["y"] }] } }, { t: "y", detail: {} }, false],
  ["parallel $or at two levels", { $or: [{ a: ["1"] }, { b: ["1"] }], detail: { $or: [{ c: ["1"] }, { d: ["1"] }] } }, { b: "1", detail: { c: "1" } }, true],
  ["parallel $or second fails", { $or: [{ a: ["1"] }, { b: ["1"] }], detail: { $or: [{ c: ["1"] }, { d: ["1"] }] } }, { b: "1", detail: { e: "1" } }, false],
  ["$or inside $or", { $or: [{ a: ["1"] }, { b: ["2"], $or: [{ c: ["3"] }, { d: ["4"] }] }] }, { b: "2", d: "4" }, true],
  ["$or inside $or inner fails", { $or: [{ a: ["1"] }, { b: ["2"], $or: [{ c: ["3"] }, { d: ["4"] }] }] }, { b: "2", d: "5" }, false],
  ["$or branches with content filters", { $or: [{ n: [{ numeric: [">", 5] }] }, { s: [{ prefix: "x" }] }] }, { n: 1, s: "xy" }, true],
  ["$or branch using exists false", { $or: [{ a: [{ exists: false }] }, { a: ["1"] }] }, {}, true],
];

const whole: MatchCase[] = [
  ["empty pattern matches any object", {}, { anything: 1 }, true],
  ["empty pattern matches an empty object", {}, {}, true],
  ["empty pattern matches a non-object event", {}, 42, true],
  ["non-object event matches no field", { a: ["1"] }, "a", false],
  ["array event matches no field", { a: ["1"] }, [{ a: "1" }], false],
  ["null event matches no field", { a: ["1"] }, null, false],
  [
    "EventBridge complex example",
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
    {
      time: "2017-10-02T16:24:49Z",
      detail: { "c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33", state: "running" },
    },
    true,
  ],
];

const groups: Record<string, MatchCase[]> = {
  "exact values": exact,
  "event arrays": arrays,
  "nested objects": nested,
  prefix,
  suffix,
  "equals-ignore-case": equalsIgnoreCase,
  wildcard,
  "anything-but": anythingBut,
  numeric,
  exists,
  cidr,
  $or: or,
  "whole pattern": whole,
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

/** [name, pattern, expected error path, fragment the message must contain] */
type InvalidCase = readonly [string, unknown, string, string];

const invalid: InvalidCase[] = [
  ["pattern is an array", [], "", "JSON object"],
  ["pattern is a string", "source", "", "JSON object"],
  ["pattern is null", null, "", "JSON object"],
  ["leaf is a string", { source: "orders" }, "source", "must be an array"],
  ["leaf is a number", { detail: { n: 5 } }, "detail.n", "must be an array"],
  ["leaf is null", { n: null }, "n", "must be an array"],
  ["empty leaf array", { source: [] }, "source", "empty arrays"],
  ["empty nested object", { detail: {} }, "detail", "empty objects"],
  ["nested array in leaf", { v: [["a"]] }, "v", "match values must be"],
  ["undefined in leaf", { v: [undefined] }, "v", "match values must be"],
  ["non-finite number", { v: [Number.POSITIVE_INFINITY] }, "v", "finite"],
  ["empty filter object", { v: [{}] }, "v", "empty content-filter"],
  ["two operators in one filter", { v: [{ prefix: "a", suffix: "b" }] }, "v", "exactly one operator"],
  ["unknown operator", { v: [{ contains: "a" }] }, "v", 'unknown operator "contains"'],
  ["unknown operator names its element", { v: ["a", { regex: "a" }] }, "v", "element 1"],
  ["prefix number", { v: [{ prefix: 1 }] }, "v", "prefix takes a string"],
  ["prefix object with wrong key", { v: [{ prefix: { wildcard: "a" } }] }, "v", "equals-ignore-case"],
  ["prefix ignore-case number", { v: [{ prefix: { "equals-ignore-case": 3 } }] }, "v", "takes a string"],
  ["suffix array", { v: [{ suffix: ["a"] }] }, "v", "suffix takes a string"],
  ["equals-ignore-case number", { v: [{ "equals-ignore-case": 1 }] }, "v", "takes a string"],
  ["wildcard consecutive stars", { v: [{ wildcard: "a**b" }] }, "v", "consecutive"],
  ["wildcard bad escape", { v: [{ wildcard: "a\\b" }] }, "v", "invalid escape"],
  ["wildcard trailing backslash", { v: [{ wildcard: "a\\" }] }, "v", "invalid escape"],
  ["wildcard number", { v: [{ wildcard: 1 }] }, "v", "wildcard takes a string"],
  ["exists string", { v: [{ exists: "true" }] }, "v", "exists takes true or false"],
  ["numeric not an array", { detail: { price: [{ numeric: 5 }] } }, "detail.price", "numeric operator needs pairs"],
  ["numeric missing operand", { detail: { price: [{ numeric: [">"] }] } }, "detail.price", "numeric operator needs pairs"],
  ["numeric three terms", { p: [{ numeric: [">", 0, "<"] }] }, "p", "numeric operator needs pairs"],
  ["numeric unknown operator", { p: [{ numeric: ["!=", 0] }] }, "p", 'unknown numeric comparison "!="'],
  ["numeric string operand", { p: [{ numeric: [">", "5"] }] }, "p", "needs a number"],
  ["numeric upper bound first", { p: [{ numeric: ["<", 5, ">", 0] }] }, "p", "lower bound"],
  ["numeric two lower bounds", { p: [{ numeric: [">", 0, ">", 5] }] }, "p", "lower bound"],
  ["numeric equals in a range", { p: [{ numeric: ["=", 0, "<", 5] }] }, "p", "lower bound"],
  ["numeric empty range", { p: [{ numeric: [">", 5, "<", 1] }] }, "p", "range is empty"],
  ["numeric single-point range", { p: [{ numeric: [">=", 5, "<=", 5] }] }, "p", "range is empty"],
  ["numeric NaN operand", { p: [{ numeric: [">", Number.NaN] }] }, "p", "finite"],
  ["cidr without slash", { ip: [{ cidr: "10.0.0.0" }] }, "ip", 'exactly one "/"'],
  ["cidr two slashes", { ip: [{ cidr: "10.0.0.0/8/8" }] }, "ip", 'exactly one "/"'],
  ["cidr non-numeric prefix", { ip: [{ cidr: "10.0.0.0/x" }] }, "ip", "prefix length"],
  ["cidr negative prefix", { ip: [{ cidr: "10.0.0.0/-1" }] }, "ip", "prefix length"],
  ["cidr IPv4 /32", { ip: [{ cidr: "10.0.0.1/32" }] }, "ip", "below 32"],
  ["cidr IPv6 /128", { ip: [{ cidr: "::1/128" }] }, "ip", "below 128"],
  ["cidr IPv4 host bits set", { ip: [{ cidr: "10.0.0.5/24" }] }, "ip", '"10.0.0.0/24"'],
  ["cidr IPv6 host bits set", { ip: [{ cidr: "2001:db8::1/32" }] }, "ip", "host bits"],
  ["cidr bad address", { ip: [{ cidr: "10.0.0/8" }] }, "ip", "not an IPv4 or IPv6 address"],
  ["cidr hostname", { ip: [{ cidr: "example.com/8" }] }, "ip", "not an IPv4 or IPv6 address"],
  ["cidr number", { ip: [{ cidr: 10 }] }, "ip", "cidr takes a string"],
  ["anything-but boolean", { v: [{ "anything-but": true }] }, "v", "anything-but takes"],
  ["anything-but null", { v: [{ "anything-but": null }] }, "v", "anything-but takes"],
  ["anything-but empty list", { v: [{ "anything-but": [] }] }, "v", "must not be empty"],
  ["anything-but mixed list", { v: [{ "anything-but": ["a", 1] }] }, "v", "only strings or only numbers"],
  ["anything-but list with null", { v: [{ "anything-but": [null] }] }, "v", "only strings or only numbers"],
  ["anything-but prefix list", { v: [{ "anything-but": { prefix: ["a", "b"] } }] }, "v", "anything-but.prefix takes a string"],
  ["anything-but empty prefix", { v: [{ "anything-but": { prefix: "" } }] }, "v", "must not be empty"],
  ["anything-but empty suffix", { v: [{ "anything-but": { suffix: "" } }] }, "v", "must not be empty"],
  ["anything-but unknown inner", { v: [{ "anything-but": { numeric: [">", 1] } }] }, "v", "unknown anything-but operator"],
  ["anything-but two inner keys", { v: [{ "anything-but": { prefix: "a", suffix: "b" } }] }, "v", "exactly one"],
  ["anything-but ignore-case number", { v: [{ "anything-but": { "equals-ignore-case": 1 } }] }, "v", "non-empty list of strings"],
  ["anything-but ignore-case empty list", { v: [{ "anything-but": { "equals-ignore-case": [] } }] }, "v", "non-empty list of strings"],
  ["anything-but bad wildcard", { v: [{ "anything-but": { wildcard: ["ok*", "**"] } }] }, "v", "consecutive"],
  ["$or not an array", { $or: { a: ["1"] } }, "$or", "array of at least 2"],
  ["$or with one branch", { $or: [{ a: ["1"] }] }, "$or", "at least 2"],
  ["$or with no branch", { $or: [] }, "$or", "at least 2"],
  ["$or branch not an object", { $or: [{ a: ["1"] }, ["b"]] }, "$or[1]", "pattern object"],
  ["$or empty branch", { $or: [{ a: ["1"] }, {}] }, "$or[1]", "empty objects"],
  ["$or branch with invalid leaf", { $or: [{ a: ["1"] }, { b: "2" }] }, "$or[1].b", "must be an array"],
  ["nested $or error path", { detail: { $or: [{ a: ["1"] }, { b: [{ numeric: [">"] }] }] } }, "detail.$or[1].b", "numeric"],
  ["reserved field name in $or", { $or: [{ prefix: ["a"] }, { b: ["1"] }] }, "$or[0].prefix", "reserved"],
  ["reserved name nested inside $or", { $or: [{ a: { numeric: ["1"] } }, { b: ["1"] }] }, "$or[0].a.numeric", "reserved"],
  ["odd keys are bracket-quoted in the path", { "a.b": { "": "x" } }, '["a.b"][""]', "must be an array"],
  ["Date is not a JSON object", { when: new Date(0) }, "when", "must be an array"],
];

function nest(depth: number): Record<string, unknown> {
  let pattern: Record<string, unknown> = { leaf: ["x"] };
  for (let i = 0; i < depth; i++) pattern = { n: pattern };
  return pattern;
}

describe("invalid patterns", () => {
  for (const [name, pattern, path, fragment] of invalid) {
    it(`${name} -> InvalidPatternError at ${path === "" ? "(pattern)" : path}`, () => {
      let error: unknown;
      try {
        compilePattern(pattern);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(InvalidPatternError);
      const invalidError = error as InvalidPatternError;
      expect(invalidError.path).toBe(path);
      expect(invalidError.message.startsWith(`${path === "" ? "(pattern)" : path}: `)).toBe(true);
      expect(invalidError.message).toContain(fragment);
    });
  }

  it("rejects nesting deeper than 20 levels and names the path", () => {
    expect(() => compilePattern(nest(19))).not.toThrow();
    let error: unknown;
    try {
      compilePattern(nest(20));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidPatternError);
    expect((error as InvalidPatternError).path).toBe(Array.from({ length: 20 }, () => "n").join("."));
    expect((error as InvalidPatternError).message).toContain("deeper than 20");
  });

  it("is an Error with a stable name", () => {
    const error = new InvalidPatternError("detail.price", "why");
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("InvalidPatternError");
    expect(error.message).toBe("detail.price: why");
  });
});

/** [name, pattern, expected types] */
type TypesCase = readonly [string, unknown, readonly string[] | null];

const typesCases: TypesCase[] = [
  ["exact type list", { type: ["order.created", "order.cancelled"] }, ["order.created", "order.cancelled"]],
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
  ["type AND $or of types intersect", { type: ["a", "b"], $or: [{ type: ["b"] }, { type: ["c"] }] }, ["b"]],
  ["disjoint type AND $or can never match", { type: ["a"], $or: [{ type: ["b"] }, { type: ["c"] }] }, []],
  ["nested $or inside a branch", { $or: [{ type: ["a"] }, { $or: [{ type: ["b"] }, { type: ["c"] }] }] }, ["a", "b", "c"]],
  ["$or inside detail does not constrain type", { type: ["a"], detail: { $or: [{ type: ["b"] }, { type: ["c"] }] } }, ["a"]],
  ["IP literal could match other spellings", { type: ["::1"] }, null],
];

describe("types extraction", () => {
  for (const [name, pattern, expected] of typesCases) {
    it(name, () => {
      expect(compilePattern(pattern).types).toEqual(expected);
    });
  }

  it("agrees with matches(): an event whose type is outside `types` never matches", () => {
    const compiled = compilePattern({ type: ["a", "b"], $or: [{ type: ["b"] }, { n: [1] }] });
    expect(compiled.types).toEqual(["a", "b"]);
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
  const globChars = fc.constantFrom("a", "b", "*", ".", "\\*");
  const globs = fc.array(globChars, { maxLength: 8 }).map((parts) => parts.join("")).filter((glob) => !glob.includes("**"));

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
      fc.property(globs, fc.array(fc.constantFrom("a", "b", "*", "."), { maxLength: 10 }).map((cs) => cs.join("")), (glob, value) => {
        expect(testPattern({ v: [{ wildcard: glob }] }, { v: value })).toBe(referenceGlob(glob).test(value));
      }),
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
        const expected = ((toInt(candidate) & mask) >>> 0) === network;
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
            if (g[i] !== 0) { i++; continue; }
            let j = i;
            while (j < 8 && g[j] === 0) j++;
            if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
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
