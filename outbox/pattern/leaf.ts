import { describeValue, InvalidPatternError, isPlainObject } from "./errors.ts";
import { compileCidr, compileIpEquals } from "./ip.ts";
import { buildLeaf, type Leaf, type LeafSpec, type NumberPredicate, newLeafSpec, type ScalarPredicate } from "./leaf-runtime.ts";
import { compileIgnoreCase, compileWildcard, parseWildcard, type StringPredicate } from "./string-matchers.ts";

export type { Leaf } from "./leaf-runtime.ts";

/** OPERATORS lists every content-filter operator event-ruler accepts, for error messages and the `$or` check. */
export const OPERATORS = ["prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "equals-ignore-case", "wildcard", "exactly"] as const;

/** Context for one leaf array element: where it is (for errors) and which spec it adds to. */
interface ElementContext {
  readonly path: string;
  /** "element N: " when the leaf array has several elements, so the message points at the right one. */
  readonly where: string;
  readonly spec: LeafSpec;
}

function fail(ctx: ElementContext, reason: string): never {
  throw new InvalidPatternError(ctx.path, `${ctx.where}${reason}`);
}

/**
 * compileLeaf validates a pattern leaf (an array of match values and content filters, OR-ed together) the way
 * event-ruler's JsonRuleCompiler does, and compiles it into a Leaf. `path` is the JSON path used in errors.
 */
export function compileLeaf(elements: readonly unknown[], path: string): Leaf {
  if (elements.length === 0) throw new InvalidPatternError(path, "empty arrays are not allowed; list at least one match value");
  const spec = newLeafSpec();
  elements.forEach((element, index) => {
    const where = elements.length > 1 ? `element ${index}: ` : "";
    addElement({ path, where, spec }, element);
  });
  return buildLeaf(spec);
}

function addElement(ctx: ElementContext, element: unknown): void {
  const { spec } = ctx;
  if (typeof element === "string") {
    // An IP literal is a one-address range on AWS, so other spellings of the address match too.
    const sameIp = compileIpEquals(element);
    if (sameIp === null) {
      spec.exactStrings.add(element);
      spec.plainStrings.push(element);
    } else {
      spec.stringTests.push(sameIp);
      spec.notOnlyPlainStrings = true;
    }
    return;
  }
  spec.notOnlyPlainStrings = true;
  if (typeof element === "number") {
    // A literal too big for a double (1e400) is still a valid match value on AWS, equal to itself only.
    if (Number.isNaN(element)) fail(ctx, "match values must be JSON numbers, got NaN");
    spec.exactNumbers.add(element);
  } else if (element === true) {
    spec.matchTrue = true;
  } else if (element === false) {
    spec.matchFalse = true;
  } else if (element === null) {
    spec.matchNull = true;
  } else if (isPlainObject(element)) {
    addFilter(ctx, element);
  } else {
    fail(ctx, `match values must be strings, numbers, booleans, null or content-filter objects, got ${describeValue(element)}`);
  }
}

function addFilter(ctx: ElementContext, filter: Record<string, unknown>): void {
  const keys = Object.keys(filter);
  if (keys.length !== 1) {
    fail(
      ctx,
      keys.length === 0
        ? `empty content-filter object; use one of ${OPERATORS.join(", ")}`
        : `a content filter takes exactly one operator, got ${keys.map((k) => JSON.stringify(k)).join(", ")}`,
    );
  }
  const operator = keys[0] as string;
  const operand = filter[operator];
  const { spec } = ctx;
  switch (operator) {
    case "exactly":
      // event-ruler's explicit spelling of a plain string match value; unlike a bare string it is never an IP range.
      spec.exactStrings.add(requireString(ctx, operator, operand));
      return;
    case "prefix":
    case "suffix": {
      if (typeof operand === "string") {
        spec.stringTests.push(operator === "prefix" ? (v) => v.startsWith(operand) : (v) => v.endsWith(operand));
        return;
      }
      spec.stringTests.push(compileIgnoreCase(ignoreCaseOperand(ctx, operator, operand), operator));
      return;
    }
    case "equals-ignore-case":
      spec.stringTests.push(compileIgnoreCase(requireString(ctx, operator, operand), "equals"));
      return;
    case "wildcard":
      spec.stringTests.push(wildcard(ctx, operator, requireString(ctx, operator, operand)));
      return;
    case "cidr": {
      const parsed = compileCidr(requireString(ctx, operator, operand));
      if (!parsed.ok) fail(ctx, parsed.reason);
      spec.stringTests.push(parsed.test);
      return;
    }
    case "numeric":
      spec.numberTests.push(numeric(ctx, operand));
      return;
    case "exists":
      if (typeof operand !== "boolean") fail(ctx, `exists takes true or false, got ${describeValue(operand)}`);
      if (operand) spec.existsTrue = true;
      else spec.existsFalse = true;
      return;
    case "anything-but":
      spec.scalarTests.push(anythingBut(ctx, operand));
      return;
    default:
      fail(ctx, `unknown operator ${JSON.stringify(operator)}; expected one of ${OPERATORS.join(", ")} (operators are case-sensitive)`);
  }
}

function requireString(ctx: ElementContext, operator: string, operand: unknown): string {
  if (typeof operand !== "string") fail(ctx, `${operator} takes a string, got ${describeValue(operand)}`);
  return operand;
}

function requireNumber(ctx: ElementContext, what: string, value: unknown): number {
  if (typeof value !== "number") fail(ctx, `${what} must be a number, got ${describeValue(value)}`);
  // event-ruler compares numbers as IEEE-754 doubles and refuses what a double cannot hold (1e400).
  if (!Number.isFinite(value)) fail(ctx, `${what} must be a finite number (a double), got ${String(value)}`);
  return value;
}

/** ignoreCaseOperand reads the `{"equals-ignore-case": "x"}` form accepted by prefix and suffix. */
function ignoreCaseOperand(ctx: ElementContext, operator: string, operand: unknown): string {
  if (!isPlainObject(operand)) fail(ctx, `${operator} takes a string or {"equals-ignore-case": string}, got ${describeValue(operand)}`);
  const keys = Object.keys(operand);
  if (keys.length !== 1 || keys[0] !== "equals-ignore-case") {
    fail(ctx, `${operator} object form only accepts "equals-ignore-case", got ${keys.map((k) => JSON.stringify(k)).join(", ") || "no keys"}`);
  }
  return requireString(ctx, `${operator}.equals-ignore-case`, operand["equals-ignore-case"]);
}

function wildcard(ctx: ElementContext, operator: string, text: string): StringPredicate {
  const parsed = parseWildcard(text);
  if (!parsed.ok) fail(ctx, `${operator} ${JSON.stringify(text)}: ${parsed.reason}`);
  ctx.spec.wildcards.push(text);
  return compileWildcard(parsed.segments);
}

const NUMERIC_SHAPE = `numeric takes one comparison like [">", 0] or a range like [">", 0, "<=", 5]`;

/**
 * numeric validates `{"numeric": [...]}` as JsonRuleCompiler does: one comparison (=, <, <=, >, >=), or a lower
 * bound (> or >=) followed by an upper bound (< or <=) that leaves a non-empty range, and nothing more.
 */
function numeric(ctx: ElementContext, operand: unknown): NumberPredicate {
  if (!Array.isArray(operand)) fail(ctx, `numeric takes an array; ${NUMERIC_SHAPE}`);
  const [op1, value1, op2, value2] = operand as unknown[];
  if (typeof op1 !== "string") fail(ctx, `numeric must start with a comparison operator, got ${describeValue(op1)}; ${NUMERIC_SHAPE}`);
  if (!COMPARISONS.has(op1)) fail(ctx, `unknown numeric comparison ${JSON.stringify(op1)}; ${NUMERIC_SHAPE}`);
  if (operand.length < 2) fail(ctx, `numeric ${op1} needs a number; ${NUMERIC_SHAPE}`);
  const first = requireNumber(ctx, `the value of numeric ${op1}`, value1);
  if (operand.length === 2) {
    if (op1 === "=") return (v) => v === first;
    return comparison(op1, first);
  }
  if (op1 !== ">" && op1 !== ">=") fail(ctx, `only a lower bound (> or >=) can start a numeric range; ${NUMERIC_SHAPE}`);
  if (op2 !== "<" && op2 !== "<=") fail(ctx, `a numeric range must end with an upper bound (< or <=), got ${describeValue(op2)}; ${NUMERIC_SHAPE}`);
  if (operand.length !== 4) fail(ctx, `too many terms in the numeric range; ${NUMERIC_SHAPE}`);
  const second = requireNumber(ctx, `the value of numeric ${op2}`, value2);
  if (!(first < second)) fail(ctx, `numeric range is empty: lower bound ${first} must be below upper bound ${second}`);
  const lower = comparison(op1, first);
  const upper = comparison(op2, second);
  return (v) => lower(v) && upper(v);
}

const COMPARISONS: ReadonlySet<string> = new Set(["=", "<", "<=", ">", ">="]);

function comparison(op: string, bound: number): NumberPredicate {
  switch (op) {
    case ">":
      return (v) => v > bound;
    case ">=":
      return (v) => v >= bound;
    case "<":
      return (v) => v < bound;
    default:
      return (v) => v <= bound;
  }
}

/**
 * anythingBut compiles an anything-but filter. As in event-ruler's ByteMachine it matches every leaf value it
 * does not exclude, whatever its JSON type: excluded strings only exclude strings and excluded numbers only
 * numbers, so `{"anything-but": "x"}` matches 5 and null. A missing field has no value, so it never matches.
 */
function anythingBut(ctx: ElementContext, operand: unknown): ScalarPredicate {
  if (typeof operand === "string") return (v) => v !== operand;
  if (typeof operand === "number") {
    const excluded = requireNumber(ctx, "an anything-but value", operand);
    return (v) => v !== excluded;
  }
  if (Array.isArray(operand)) return anythingButList(ctx, operand);
  if (!isPlainObject(operand)) {
    fail(
      ctx,
      `anything-but takes a string, a number, a list of strings or of numbers, or an object with prefix, suffix, equals-ignore-case or wildcard; got ${describeValue(operand)}`,
    );
  }
  const keys = Object.keys(operand);
  if (keys.length !== 1) fail(ctx, `anything-but object takes exactly one of prefix, suffix, equals-ignore-case, wildcard`);
  const inner = keys[0] as string;
  const excludes = anythingButInner(ctx, inner, operand[inner]);
  return (v) => typeof v !== "string" || !excludes(v);
}

function anythingButList(ctx: ElementContext, values: readonly unknown[]): ScalarPredicate {
  if (values.length > 0 && values.every((v) => typeof v === "string")) {
    const excluded = new Set(values as string[]);
    return (v) => typeof v !== "string" || !excluded.has(v);
  }
  if (values.length > 0 && values.every((v) => typeof v === "number")) {
    const excluded = new Set((values as number[]).map((n) => requireNumber(ctx, "an anything-but value", n)));
    return (v) => typeof v !== "number" || !excluded.has(v);
  }
  return fail(ctx, "an anything-but list must hold only strings or only numbers, and at least one (no mixing, no null, booleans or objects)");
}

/** anythingButInner compiles the `{"prefix" | "suffix" | "equals-ignore-case" | "wildcard": string | string[]}` forms. */
function anythingButInner(ctx: ElementContext, inner: string, value: unknown): StringPredicate {
  const name = `anything-but.${inner}`;
  let tests: StringPredicate[];
  switch (inner) {
    case "prefix":
    case "suffix":
      tests = strings(ctx, name, value).map((text) => {
        if (text === "") fail(ctx, `${name} values must not be empty`);
        return inner === "prefix" ? (v: string) => v.startsWith(text) : (v: string) => v.endsWith(text);
      });
      break;
    case "equals-ignore-case":
      tests = strings(ctx, name, value).map((text) => compileIgnoreCase(text, "equals"));
      break;
    case "wildcard":
      tests = strings(ctx, name, value).map((text) => wildcard(ctx, name, text));
      break;
    default:
      return fail(ctx, `unknown anything-but operator ${JSON.stringify(inner)}; expected prefix, suffix, equals-ignore-case or wildcard`);
  }
  if (tests.length === 1) return tests[0] as StringPredicate;
  return (v) => {
    for (let i = 0; i < tests.length; i++) if ((tests[i] as StringPredicate)(v)) return true;
    return false;
  };
}

function strings(ctx: ElementContext, name: string, value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string")) return value as string[];
  return fail(ctx, `${name} takes a string or a non-empty list of strings, got ${describeValue(value)}`);
}
