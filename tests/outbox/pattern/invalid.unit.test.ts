import { describe, expect, it } from "bun:test";
import { compilePattern, InvalidPatternError } from "../../../outbox/pattern/index.ts";

/**
 * [name, pattern, expected error path, fragment the message must contain]. Sources in brackets: [aws] the
 * pattern is refused by the real service (LocalStack's validated _EXC templates, AWS's message quoted where it
 * helps), [ruler] refused by event-ruler's JsonRuleCompiler (its JsonRuleCompilerTest bad patterns).
 */
type InvalidCase = readonly [string, unknown, string, string];

const structure: InvalidCase[] = [
  ["pattern is an array [ruler: Filter is not an object]", [], "", "JSON object"],
  ["pattern is null [ruler]", null, "", "JSON object"],
  ["leaf is a string [aws string_nolist_EXC]", { source: "orders" }, "source", "must be an array"],
  ["leaf is a number [aws int_nolist_EXC]", { detail: { n: 5 } }, "detail.n", "must be an array"],
  ["leaf is null [ruler]", { n: null }, "n", "must be an array"],
  ["empty leaf array [aws arrays_empty_EXC]", { source: [] }, "source", "empty arrays"],
  ["empty nested object [ruler: Empty objects are not allowed]", { detail: {} }, "detail", "empty objects"],
  ["nested array in a leaf [ruler: Match value must be String, number, true, false, or null]", { v: [["a"]] }, "v", "match values must be"],
  ["undefined in a leaf [ours]", { v: [undefined] }, "v", "match values must be"],
  ["empty filter object [ruler: Match expression name not found]", { v: [{}] }, "v", "empty content-filter"],
  ["two operators in one filter [ruler: Only one key allowed]", { v: [{ prefix: "a", suffix: "b" }] }, "v", "exactly one operator"],
  ["unknown operator [ruler: Unrecognized match type]", { v: [{ contains: "a" }] }, "v", 'unknown operator "contains"'],
  ["operators are case-sensitive [aws operator_case_sensitive_EXC]", { v: [{ EXISTS: true }] }, "v", 'unknown operator "EXISTS"'],
  ["unknown operator names its element [ours]", { v: ["a", { regex: "a" }] }, "v", "element 1"],
  ["odd keys are bracket-quoted in the path [ours]", { "a.b": { "": "x" } }, '["a.b"][""]', "must be an array"],
  ["a Date is not a JSON object [ours]", { when: new Date(0) }, "when", "must be an array"],
];

const stringOperators: InvalidCase[] = [
  ["prefix number [aws content_prefix_int_EXC]", { v: [{ prefix: 1 }] }, "v", "prefix takes a string"],
  ["prefix list [aws content_prefix_list_EXC]", { v: [{ prefix: ["a"] }] }, "v", "prefix takes a string"],
  ["prefix object with another key [ruler: Unsupported prefix pattern]", { v: [{ prefix: { wildcard: "a" } }] }, "v", "equals-ignore-case"],
  ["prefix ignore case with a list [ruler]", { v: [{ prefix: { "equals-ignore-case": ["abc"] } }] }, "v", "takes a string"],
  ["prefix ignore case with a second key [ruler]", { v: [{ prefix: { "equals-ignore-case": "abc", test: "def" } }] }, "v", "only accepts"],
  ["suffix number [aws content_suffix_int_EXC]", { v: [{ suffix: 3 }] }, "v", "suffix takes a string"],
  ["suffix list [aws content_suffix_list_EXC]", { v: [{ suffix: ["a"] }] }, "v", "suffix takes a string"],
  ["suffix ignore case number [ruler]", { v: [{ suffix: { "equals-ignore-case": 5 } }] }, "v", "takes a string"],
  ["equals-ignore-case number [aws content_ignorecase_EXC]", { v: [{ "equals-ignore-case": 1 }] }, "v", "takes a string"],
  ["equals-ignore-case list [aws content_ignorecase_list_EXC]", { v: [{ "equals-ignore-case": ["a"] }] }, "v", "takes a string"],
  ["exactly number [ruler: exact match pattern must be a string]", { v: [{ exactly: 33 }] }, "v", "exactly takes a string"],
  [
    "wildcard consecutive stars [aws content_wildcard_repeating_star_EXC]",
    { v: [{ wildcard: "arn:aws:events:us-east-1:**:event-bus/*" }] },
    "v",
    "consecutive",
  ],
  ["wildcard bad escape [ruler README]", { v: [{ wildcard: "a\\b" }] }, "v", "invalid escape"],
  ["wildcard trailing backslash [ruler JsonRuleCompilerTest]", { v: [{ wildcard: "foo*bar\\" }] }, "v", "invalid escape"],
  ["wildcard number [aws content_wildcard_int_EXC]", { v: [{ wildcard: 5 }] }, "v", "wildcard takes a string"],
  ["wildcard list [aws content_wildcard_list_EXC]", { v: [{ wildcard: ["abc"] }] }, "v", "wildcard takes a string"],
  ["exists string [ruler: exists match pattern must be either true or false]", { v: [{ exists: "true" }] }, "v", "exists takes true or false"],
];

const numeric: InvalidCase[] = [
  ["numeric not an array [aws content_numeric_number_EXC]", { p: [{ numeric: 5 }] }, "p", "numeric takes an array"],
  ["numeric operator casing [aws content_numeric_operatorcasing_EXC]", { p: [{ NUMERIC: [">", 1] }] }, "p", 'unknown operator "NUMERIC"'],
  ["numeric missing operand [ruler]", { p: [{ numeric: [">"] }] }, "p", "needs a number"],
  ["numeric string operand [aws content_numeric_syntax_EXC]", { p: [{ numeric: ["<", "5"] }] }, "p", "must be a number"],
  ["numeric boolean operand [ruler]", { p: [{ numeric: ["=", true] }] }, "p", "must be a number"],
  ["numeric unknown operator [ruler: Unrecognized numeric range operator]", { p: [{ numeric: ["!=", 0] }] }, "p", 'unknown numeric comparison "!="'],
  ["numeric == [ruler JsonRuleCompilerTest]", { p: [{ numeric: ["==", 1, ">", 0] }] }, "p", 'unknown numeric comparison "=="'],
  ["numeric upper bound first [ruler JsonRuleCompilerTest]", { p: [{ numeric: ["<", 1, ">", 0] }] }, "p", "lower bound"],
  ["numeric two lower bounds [aws content_numeric_EXC: Bad numeric range operator]", { p: [{ numeric: [">", 0, ">", 5] }] }, "p", "upper bound"],
  ["numeric equals in a range [ruler: Too many elements]", { p: [{ numeric: ["=", 0, "<", 5] }] }, "p", "lower bound"],
  ["numeric range with a fifth term [ruler JsonRuleCompilerTest]", { p: [{ numeric: [">", 1, "<", 30, false] }] }, "p", "too many terms"],
  ["numeric empty range [ruler: Bottom must be less than top]", { p: [{ numeric: [">", 30, "<", 1] }] }, "p", "range is empty"],
  ["numeric single-point range [ruler JsonRuleCompilerTest]", { p: [{ numeric: [">", 1, "<", 1] }] }, "p", "range is empty"],
  ["numeric operand beyond a double [ruler: 1E309 is refused]", { p: [{ numeric: ["=", Number.POSITIVE_INFINITY] }] }, "p", "finite"],
];

const cidr: InvalidCase[] = [
  ["cidr without slash [aws content_ip_address_EXC: one '/' required]", { ip: [{ cidr: "10.0.0.0" }] }, "ip", 'exactly one "/"'],
  ["cidr two slashes [ruler]", { ip: [{ cidr: "10.0.0.0//8" }] }, "ip", 'exactly one "/"'],
  ["cidr non-numeric mask [aws content_ip_address_bad_mask_EXC]", { ip: [{ cidr: "10.0.0.0/xx" }] }, "ip", "must be an integer"],
  ["cidr negative mask [ruler: mask bits must not be negative]", { ip: [{ cidr: "10.0.0.0/-1" }] }, "ip", "must not be negative"],
  ["cidr IPv4 /32 [ruler: IPv4 mask bits must be < 32]", { ip: [{ cidr: "10.0.0.1/32" }] }, "ip", "below 32"],
  ["cidr IPv6 /128 [ruler: IPv6 mask bits must be < 128]", { ip: [{ cidr: "::1/128" }] }, "ip", "below 128"],
  ["cidr IPv4-mapped IPv6 is an IPv4 network [ruler: Java InetAddress]", { ip: [{ cidr: "::ffff:a00:0/104" }] }, "ip", "below 32"],
  ["cidr bad IPv4 [aws content_ip_address_bad_ip_EXC: Nonstandard IP address]", { ip: [{ cidr: "xx.11.xx/8" }] }, "ip", "not an IPv4 or IPv6 address"],
  ["cidr bad IPv6 [aws content_ip_address_v6_bad_ip_EXC]", { ip: [{ cidr: "xxxx:db8:1234:1a00::/56" }] }, "ip", "not an IPv4 or IPv6 address"],
  ["cidr number [aws content_ip_address_type_EXC]", { ip: [{ cidr: 10 }] }, "ip", "cidr takes a string"],
];

const anythingBut: InvalidCase[] = [
  ["anything-but null [aws content_anything_but_string_null_type_EXC]", { v: [{ "anything-but": null }] }, "v", "anything-but takes"],
  ["anything-but boolean [ruler]", { v: [{ "anything-but": true }] }, "v", "anything-but takes"],
  ["anything-but empty list [ruler: either all values are number or string]", { v: [{ "anything-but": [] }] }, "v", "at least one"],
  ["anything-but mixed list [ruler: mixed type is not supported]", { v: [{ "anything-but": ["child0", 111] }] }, "v", "only strings or only numbers"],
  [
    "anything-but list with null [aws content_anything_but_string_list_null_type_EXC]",
    { v: [{ "anything-but": ["a", null] }] },
    "v",
    "only strings or only numbers",
  ],
  [
    "anything-but object with an unknown operator [ruler: Unsupported anything-but pattern]",
    { v: [{ "anything-but": { foo: 3 } }] },
    "v",
    "unknown anything-but operator",
  ],
  ["anything-but numeric [ruler]", { v: [{ "anything-but": { numeric: [">", 1] } }] }, "v", "unknown anything-but operator"],
  ["anything-but exists [ruler]", { v: [{ "anything-but": { exists: true } }] }, "v", "unknown anything-but operator"],
  ["anything-but two operators [ruler: Only one key allowed]", { v: [{ "anything-but": { prefix: "a", suffix: "b" } }] }, "v", "exactly one"],
  ["anything-but prefix number [aws content_anything_prefix_int_EXC]", { v: [{ "anything-but": { prefix: 27 } }] }, "v", "non-empty list of strings"],
  [
    "anything-but empty prefix [aws content_anything_prefix_empty_EXC: Null prefix/suffix not allowed]",
    { v: [{ "anything-but": { prefix: "" } }] },
    "v",
    "must not be empty",
  ],
  ["anything-but prefix list with an empty string [ruler JsonRuleCompilerTest]", { v: [{ "anything-but": { prefix: ["1", ""] } }] }, "v", "must not be empty"],
  [
    "anything-but prefix list of numbers [aws content_anything_prefix_list_type_EXC]",
    { v: [{ "anything-but": { prefix: [1, 2, 3] } }] },
    "v",
    "non-empty list of strings",
  ],
  [
    "anything-but prefix ignore case [aws content_anything_prefix_ignorecase_EXC]",
    { v: [{ "anything-but": { prefix: { "equals-ignore-case": "a" } } }] },
    "v",
    "non-empty list of strings",
  ],
  ["anything-but empty suffix [aws content_anything_suffix_empty_EXC]", { v: [{ "anything-but": { suffix: "" } }] }, "v", "must not be empty"],
  ["anything-but suffix number [aws content_anything_suffix_int_EXC]", { v: [{ "anything-but": { suffix: 27 } }] }, "v", "non-empty list of strings"],
  [
    "anything-but suffix list with null [aws content_anything_suffix_list_null_type_EXC]",
    { v: [{ "anything-but": { suffix: ["a", null] } }] },
    "v",
    "non-empty list of strings",
  ],
  [
    "anything-but suffix ignore case [aws content_anything_suffix_ignorecase_EXC]",
    { v: [{ "anything-but": { suffix: { "equals-ignore-case": "a" } } }] },
    "v",
    "non-empty list of strings",
  ],
  [
    "anything-but ignore case number [aws content_anything_but_ignorecase_EXC]",
    { v: [{ "anything-but": { "equals-ignore-case": 1 } }] },
    "v",
    "non-empty list of strings",
  ],
  [
    "anything-but ignore case list of numbers [aws content_anything_but_ignorecase_list_EXC]",
    { v: [{ "anything-but": { "equals-ignore-case": [1, 2] } }] },
    "v",
    "non-empty list of strings",
  ],
  ["anything-but wildcard number [aws content_anything_wildcard_type_EXC]", { v: [{ "anything-but": { wildcard: 27 } }] }, "v", "non-empty list of strings"],
  [
    "anything-but wildcard list with a number [aws content_anything_wildcard_list_type_EXC]",
    { v: [{ "anything-but": { wildcard: [123, "*/dir/*"] } }] },
    "v",
    "non-empty list of strings",
  ],
  ["anything-but wildcard consecutive stars [ruler JsonRuleCompilerTest]", { v: [{ "anything-but": { wildcard: ["1", "foo**bar"] } }] }, "v", "consecutive"],
  ["anything-but wildcard trailing backslash [ruler JsonRuleCompilerTest]", { v: [{ "anything-but": { wildcard: "foo*bar\\" } }] }, "v", "invalid escape"],
];

const or: InvalidCase[] = [
  ["$or with one branch [ruler: at least 2 Objects in $or]", { $or: [{ a: ["1"] }] }, "$or", "at least 2"],
  ["$or with no branch [ruler]", { $or: [] }, "$or", "at least 2"],
  [
    "$or branch not an object [ruler: Only JSON object is allowed in array of $or]",
    { detail: { $or: [{ a: ["1"] }, [{ foo: ["x"] }]] } },
    "detail.$or[1]",
    "pattern object",
  ],
  ["$or empty branch [ruler: Empty objects are not allowed]", { $or: [{ a: ["1"] }, {}] }, "$or[1]", "empty objects"],
  ["$or branch with an invalid leaf [ruler]", { $or: [{ a: ["1"] }, { b: "2" }] }, "$or[1].b", "must be an array"],
  ["nested $or error path [ours]", { detail: { $or: [{ a: ["1"] }, { b: [{ numeric: [">"] }] }] } }, "detail.$or[1].b", "numeric"],
  [
    "reserved field name in $or [ruler README: RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP]",
    { $or: [{ prefix: ["a"] }, { b: ["1"] }] },
    "$or[0].prefix",
    "reserved",
  ],
  ["reserved name nested in a branch [ruler]", { $or: [{ a: { numeric: ["1"] } }, { b: ["1"] }] }, "$or[0].a.numeric", "reserved"],
  ["reserved comparison symbol in $or [ruler]", { $or: [{ ">=": ["1"] }, { b: ["1"] }] }, '$or[0][">="]', "reserved"],
];

const groups: Record<string, InvalidCase[]> = { structure, "string operators": stringOperators, numeric, cidr, "anything-but": anythingBut, $or: or };

for (const [group, cases] of Object.entries(groups)) {
  describe(`invalid patterns: ${group}`, () => {
    for (const [name, pattern, path, fragment] of cases) {
      it(`${name} -> InvalidPatternError at ${path === "" ? "(pattern)" : path}`, () => {
        let error: unknown;
        try {
          compilePattern(pattern);
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(InvalidPatternError);
        const invalid = error as InvalidPatternError;
        expect(invalid.path).toBe(path);
        expect(invalid.message.startsWith(`${path === "" ? "(pattern)" : path}: `)).toBe(true);
        expect(invalid.message).toContain(fragment);
      });
    }
  });
}

describe("InvalidPatternError", () => {
  it("is an Error with a stable name and a message starting with the path", () => {
    const error = new InvalidPatternError("detail.price", "why");
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("InvalidPatternError");
    expect(error.message).toBe("detail.price: why");
  });
});
