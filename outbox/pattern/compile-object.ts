import { childPath, describeValue, indexPath, InvalidPatternError, isPlainObject } from "./errors.ts";
import { compileLeaf, OPERATORS, type LeafTest } from "./leaf.ts";

/** ObjectTest matches one pattern object against an event object, or against nothing (undefined). */
export type ObjectTest = (context: Record<string, unknown> | undefined) => boolean;

/** MAX_DEPTH bounds pattern nesting (objects and `$or` branches) so hostile patterns cannot blow the stack. */
export const MAX_DEPTH = 20;

/** OR_KEY is the `$or` keyword; it is not a field name and adds no step to the event path. */
export const OR_KEY = "$or";

// AWS refuses these as field names inside `$or` branches, where they would be ambiguous with filters.
const RESERVED_IN_OR: ReadonlySet<string> = new Set<string>([
  ...OPERATORS,
  "exactly",
  "=", "<", "<=", ">", ">=",
  "regex", "not-wildcard", "not-equals-ignore-case",
  "date-after", "date-on-or-after", "date-before", "date-on-or-before", "in-date-range",
  "ip-address-in-range", "ip-address-not-in-range",
]);

type FieldTest = (context: Record<string, unknown> | undefined) => boolean;

/**
 * compileObject validates one pattern object and compiles it into an ObjectTest: every field must match
 * (AND) and every `$or` must have a matching branch. `allowEmpty` is only true for the whole pattern,
 * because AWS rejects empty nested objects while an empty pattern is our "match everything".
 */
export function compileObject(
  pattern: Record<string, unknown>,
  path: string,
  depth: number,
  inOr: boolean,
  allowEmpty: boolean,
): ObjectTest {
  if (depth > MAX_DEPTH) throw new InvalidPatternError(path, `pattern nesting is deeper than ${MAX_DEPTH} levels`);
  const keys = Object.keys(pattern);
  if (keys.length === 0 && !allowEmpty) throw new InvalidPatternError(path, "empty objects are not allowed");

  const fields: FieldTest[] = [];
  const ors: ObjectTest[][] = [];
  for (const key of keys) {
    const value = pattern[key];
    const keyPath = childPath(path, key);
    if (key === OR_KEY) {
      ors.push(compileOr(value, keyPath, depth));
      continue;
    }
    if (inOr && RESERVED_IN_OR.has(key)) {
      throw new InvalidPatternError(keyPath, `${JSON.stringify(key)} is a reserved operator name and cannot be a field name inside $or`);
    }
    const read = fieldReader(key);
    if (Array.isArray(value)) {
      const leaf = compileLeaf(value, keyPath);
      fields.push((context) => leaf(context === undefined ? undefined : read(context)));
    } else if (isPlainObject(value)) {
      const nested = nestedTest(compileObject(value, keyPath, depth + 1, inOr, false));
      fields.push((context) => nested(context === undefined ? undefined : read(context)));
    } else {
      throw new InvalidPatternError(keyPath, `must be an array of match values or a nested pattern object, got ${describeValue(value)}`);
    }
  }

  // Against a missing object every field reads as absent, so that answer is fixed once, here.
  const absent =
    fields.every((field) => field(undefined)) &&
    ors.every((branches) => branches.some((branch) => branch(undefined)));
  return (context) => {
    if (context === undefined) return absent;
    for (let i = 0; i < fields.length; i++) if (!(fields[i] as FieldTest)(context)) return false;
    for (let i = 0; i < ors.length; i++) if (!anyBranch(ors[i] as ObjectTest[], context)) return false;
    return true;
  };
}

function anyBranch(branches: readonly ObjectTest[], context: Record<string, unknown>): boolean {
  for (let i = 0; i < branches.length; i++) if ((branches[i] as ObjectTest)(context)) return true;
  return false;
}

function compileOr(value: unknown, path: string, depth: number): ObjectTest[] {
  if (!Array.isArray(value)) {
    throw new InvalidPatternError(path, `$or takes an array of at least 2 pattern objects, got ${describeValue(value)}`);
  }
  if (value.length < 2) {
    throw new InvalidPatternError(path, `$or needs at least 2 pattern objects, got ${value.length}`);
  }
  return value.map((branch, index) => {
    const branchPath = indexPath(path, index);
    if (!isPlainObject(branch)) {
      throw new InvalidPatternError(branchPath, `each $or branch must be a pattern object, got ${describeValue(branch)}`);
    }
    // Branch fields live at the same event level as the object holding `$or`; only the error path names the branch.
    return compileObject(branch, branchPath, depth + 1, true, false);
  });
}

/**
 * fieldReader reads an own property only, so pattern keys like "constructor" never see Object.prototype.
 * An own "__proto__" (as JSON.parse creates) shadows the inherited accessor, so it needs no special case.
 */
function fieldReader(key: string): (context: Record<string, unknown>) => unknown {
  return (context) => (Object.hasOwn(context, key) ? context[key] : undefined);
}

const NO_OBJECTS = 0;
const NO_MATCH = 1;
const MATCHED = 2;

/**
 * nestedTest applies a nested pattern object to whatever the event holds at that key. An event array
 * matches when one of its objects matches the whole nested pattern (AWS's array-consistent matching);
 * anything that is not an object means the nested fields are all absent.
 */
function nestedTest(object: ObjectTest): LeafTest {
  const whenAbsent = object(undefined);
  const scan = (values: readonly unknown[]): number => {
    let state = NO_OBJECTS;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (Array.isArray(value)) {
        const inner = scan(value);
        if (inner === MATCHED) return MATCHED;
        if (inner === NO_MATCH) state = NO_MATCH;
      } else if (typeof value === "object" && value !== null) {
        if (object(value as Record<string, unknown>)) return MATCHED;
        state = NO_MATCH;
      }
    }
    return state;
  };
  return (value) => {
    if (typeof value !== "object" || value === null) return whenAbsent;
    if (!Array.isArray(value)) return object(value as Record<string, unknown>);
    const state = scan(value);
    return state === MATCHED || (state === NO_OBJECTS && whenAbsent);
  };
}
