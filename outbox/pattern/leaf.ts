import { describeValue, InvalidPatternError, isPlainObject } from "./errors.ts";
import { compileCidr, compileIpEquals } from "./ip.ts";
import { buildLeafTest, type LeafSpec, type LeafTest, type NumberPredicate, type ScalarPredicate } from "./leaf-runtime.ts";
import { compileIgnoreCase, compileWildcard, parseWildcard, type StringPredicate } from "./string-matchers.ts";

export type { LeafTest } from "./leaf-runtime.ts";

/** OPERATORS lists every content-filter operator, for error messages and the `$or` reserved-name check. */
export const OPERATORS = [
  "prefix",
  "suffix",
  "anything-but",
  "numeric",
  "exists",
  "cidr",
  "equals-ignore-case",
  "wildcard",
] as const;

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
 * compileLeaf validates a pattern leaf (an array of match values and content filters, OR-ed together) and
 * compiles it into one LeafTest. Event arrays match when any of their leaf elements match; objects are
 * intermediate nodes, not leaves, so they only ever satisfy `{"exists": false}` — the AWS behaviour.
 */
export function compileLeaf(elements: readonly unknown[], path: string): LeafTest {
  if (elements.length === 0) throw new InvalidPatternError(path, "empty arrays are not allowed; list at least one match value");
  const spec: LeafSpec = {
    exactStrings: new Set(),
    exactNumbers: new Set(),
    matchTrue: false,
    matchFalse: false,
    matchNull: false,
    stringTests: [],
    numberTests: [],
    scalarTests: [],
    existsTrue: false,
    existsFalse: false,
  };
  elements.forEach((element, index) => {
    const where = elements.length > 1 ? `element ${index}: ` : "";
    addElement({ path, where, spec }, element);
  });
  return buildLeafTest(spec);
}

function addElement(ctx: ElementContext, element: unknown): void {
  const { spec } = ctx;
  if (typeof element === "string") {
    spec.exactStrings.add(element);
    const sameIp = compileIpEquals(element);
    if (sameIp !== null) spec.stringTests.push(sameIp);
  } else if (typeof element === "number") {
    spec.exactNumbers.add(requireFinite(ctx, element, "match value"));
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
    fail(ctx, keys.length === 0
      ? `empty content-filter object; use one of ${OPERATORS.join(", ")}`
      : `a content filter takes exactly one operator, got ${keys.map((k) => JSON.stringify(k)).join(", ")}`);
  }
  const operator = keys[0] as string;
  const operand = filter[operator];
  const { spec } = ctx;
  switch (operator) {
    case "prefix":
    case "suffix": {
      if (typeof operand === "string") {
        spec.stringTests.push(operator === "prefix" ? (v) => v.startsWith(operand) : (v) => v.endsWith(operand));
        return;
      }
      const text = ignoreCaseOperand(ctx, operator, operand);
      spec.stringTests.push(compileIgnoreCase([text], operator));
      return;
    }
    case "equals-ignore-case":
      spec.stringTests.push(compileIgnoreCase([requireString(ctx, operator, operand)], "equals"));
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
      addNumeric(ctx, operand);
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
      fail(ctx, `unknown operator ${JSON.stringify(operator)}; expected one of ${OPERATORS.join(", ")}`);
  }
}

function requireString(ctx: ElementContext, operator: string, operand: unknown): string {
  if (typeof operand !== "string") fail(ctx, `${operator} takes a string, got ${describeValue(operand)}`);
  return operand;
}

function requireFinite(ctx: ElementContext, value: number, what: string): number {
  if (!Number.isFinite(value)) fail(ctx, `${what} must be a finite number, got ${String(value)}`);
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
  return compileWildcard(parsed.segments);
}

const LOWER_BOUNDS = new Set([">", ">="]);
const UPPER_BOUNDS = new Set(["<", "<="]);
const NUMERIC_SHAPE = `numeric operator needs pairs like [">", 0] or [">", 0, "<=", 5]`;

/**
 * addNumeric validates `{"numeric": [...]}` exactly as AWS does: one comparison (=, <, <=, >, >=), or a
 * lower bound (> or >=) followed by an upper bound (< or <=) that leaves a non-empty range.
 */
function addNumeric(ctx: ElementContext, operand: unknown): void {
  if (!Array.isArray(operand) || (operand.length !== 2 && operand.length !== 4)) fail(ctx, NUMERIC_SHAPE);
  const [op1, value1, op2, value2] = operand as unknown[];
  const first = numericTerm(ctx, op1, value1);
  if (operand.length === 2) {
    if (op1 === "=") ctx.spec.exactNumbers.add(first);
    else ctx.spec.numberTests.push(comparison(op1 as string, first));
    return;
  }
  const second = numericTerm(ctx, op2, value2);
  if (!LOWER_BOUNDS.has(op1 as string) || !UPPER_BOUNDS.has(op2 as string)) {
    fail(ctx, `a two-sided numeric range must be a lower bound (> or >=) then an upper bound (< or <=), like [">", 0, "<=", 5]`);
  }
  if (!(first < second)) fail(ctx, `numeric range is empty: lower bound ${first} must be below upper bound ${second}`);
  const lower = comparison(op1 as string, first);
  const upper = comparison(op2 as string, second);
  ctx.spec.numberTests.push((v) => lower(v) && upper(v));
}

function numericTerm(ctx: ElementContext, op: unknown, value: unknown): number {
  if (op !== "=" && !LOWER_BOUNDS.has(op as string) && !UPPER_BOUNDS.has(op as string)) {
    fail(ctx, `unknown numeric comparison ${typeof op === "string" ? JSON.stringify(op) : describeValue(op)}; ${NUMERIC_SHAPE}`);
  }
  if (typeof value !== "number") fail(ctx, `numeric ${String(op)} needs a number, got ${describeValue(value)}; ${NUMERIC_SHAPE}`);
  return requireFinite(ctx, value, `numeric ${String(op)} operand`);
}

function comparison(op: string, bound: number): NumberPredicate {
  switch (op) {
    case ">": return (v) => v > bound;
    case ">=": return (v) => v >= bound;
    case "<": return (v) => v < bound;
    default: return (v) => v <= bound;
  }
}

/**
 * anythingBut compiles an anything-but filter. Like AWS, it matches every leaf value it does not exclude,
 * whatever its JSON type: excluded strings only exclude strings and excluded numbers only numbers, so
 * `{"anything-but": "x"}` matches 5 and null. A missing field has no value, so it never matches.
 */
function anythingBut(ctx: ElementContext, operand: unknown): ScalarPredicate {
  if (typeof operand === "string") return (v) => v !== operand;
  if (typeof operand === "number") {
    const excluded = requireFinite(ctx, operand, "anything-but value");
    return (v) => v !== excluded;
  }
  if (Array.isArray(operand)) return anythingButList(ctx, operand);
  if (!isPlainObject(operand)) {
    fail(ctx, `anything-but takes a string, a number, a list of strings or of numbers, or an object with prefix, suffix, equals-ignore-case or wildcard; got ${describeValue(operand)}`);
  }
  const keys = Object.keys(operand);
  if (keys.length !== 1) fail(ctx, `anything-but object takes exactly one of prefix, suffix, equals-ignore-case, wildcard`);
  const inner = keys[0] as string;
  const value = operand[inner];
  const excludes = anythingButInner(ctx, inner, value);
  return (v) => typeof v !== "string" || !excludes(v);
}

function anythingButList(ctx: ElementContext, values: readonly unknown[]): ScalarPredicate {
  if (values.length === 0) fail(ctx, "anything-but list must not be empty");
  if (values.every((v) => typeof v === "string")) {
    const excluded = new Set(values as string[]);
    return (v) => typeof v !== "string" || !excluded.has(v);
  }
  if (values.every((v) => typeof v === "number")) {
    const excluded = new Set((values as number[]).map((n) => requireFinite(ctx, n, "anything-but value")));
    return (v) => typeof v !== "number" || !excluded.has(v);
  }
  return fail(ctx, "anything-but list must hold only strings or only numbers (no mixing, no null, booleans or objects)");
}

function anythingButInner(ctx: ElementContext, inner: string, value: unknown): StringPredicate {
  const name = `anything-but.${inner}`;
  switch (inner) {
    case "prefix":
    case "suffix": {
      // AWS accepts exactly one non-empty prefix/suffix here, never a list.
      const text = requireString(ctx, name, value);
      if (text === "") fail(ctx, `${name} must not be empty`);
      return inner === "prefix" ? (v) => v.startsWith(text) : (v) => v.endsWith(text);
    }
    case "equals-ignore-case":
      return compileIgnoreCase(stringOrStrings(ctx, name, value), "equals");
    case "wildcard": {
      const tests = stringOrStrings(ctx, name, value).map((text) => wildcard(ctx, name, text));
      if (tests.length === 1) return tests[0] as StringPredicate;
      return (v) => {
        for (let i = 0; i < tests.length; i++) if ((tests[i] as StringPredicate)(v)) return true;
        return false;
      };
    }
    default:
      return fail(ctx, `unknown anything-but operator ${JSON.stringify(inner)}; expected prefix, suffix, equals-ignore-case or wildcard`);
  }
}

function stringOrStrings(ctx: ElementContext, name: string, value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string")) return value as string[];
  return fail(ctx, `${name} takes a string or a non-empty list of strings, got ${describeValue(value)}`);
}
