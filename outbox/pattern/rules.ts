import { childPath, describeValue, InvalidPatternError, indexPath, isPlainObject } from "./errors.ts";
import { compileLeaf, type Leaf, OPERATORS } from "./leaf.ts";
import { MAX_OR_COMBINATIONS, MAX_RULE_FIELDS, PatternTooComplexError } from "./limits.ts";

/** OR_KEY is the `$or` keyword; it is not a field name and adds no step to the event path. */
export const OR_KEY = "$or";

// event-ruler (Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP) refuses these as field names inside `$or`
// branches, where they would be ambiguous with filters; some are reserved for operators not shipped yet.
const RESERVED_IN_OR: ReadonlySet<string> = new Set<string>([
  ...OPERATORS,
  "=",
  "<",
  "<=",
  ">",
  ">=",
  "regex",
  "not-wildcard",
  "not-equals-ignore-case",
  "date-after",
  "date-on-or-after",
  "date-before",
  "date-on-or-before",
  "in-date-range",
  "ip-address-in-range",
  "ip-address-not-in-range",
]);

/** Step is one field of a sub-rule: the dotted event path and the leaf its values must satisfy. */
export interface Step {
  readonly path: string;
  readonly leaf: Leaf;
}

/** SubRule is one `$or`-free alternative of a pattern: every step must hold, in path order. */
export type SubRule = readonly Step[];

type Draft = Map<string, Leaf>;

/**
 * compileRules turns a pattern into the sub-rules event-ruler's JsonRuleCompiler builds:
 * - keys join into dotted paths, so `{"a": {"b": [1]}}` and `{"a.b": [1]}` are the same field;
 * - each `$or` branch forks every sub-rule built so far, and a path written again replaces the earlier leaf
 *   in document order (event-ruler's default rule overriding), so `{"a": ["1"], "$or": [{"a": ["2"]}, ...]}`
 *   means a = "2" in that branch;
 * - a `$or` that is not the operator (not an array of at least two objects, or a branch naming a reserved
 *   word) makes the whole pattern compile again with `$or` as a plain field name, as event-ruler falls back to
 *   its pre-`$or` compiler; if that fails too, the `$or` error is the one reported.
 * Steps are sorted by path, the order event-ruler evaluates them in. An empty pattern has no sub-rules.
 */
export function compileRules(pattern: Record<string, unknown>): SubRule[] {
  let drafts: Draft[];
  try {
    drafts = compileDrafts(pattern, true);
  } catch (err) {
    if (!(err instanceof InvalidPatternError) || err instanceof PatternTooComplexError || !mentionsOr(pattern)) throw err;
    try {
      drafts = compileDrafts(pattern, false);
    } catch {
      throw err;
    }
  }
  const steps = new Map<string, Map<Leaf, Step>>();
  return drafts.map((draft) => {
    if (draft.size > MAX_RULE_FIELDS) {
      throw new PatternTooComplexError("", `a pattern alternative names ${draft.size} fields; EventBridge allows at most ${MAX_RULE_FIELDS}`);
    }
    return [...draft.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, leaf]) => shared(steps, path, leaf));
  });
}

/** shared hands out one Step object per (path, leaf), so sub-rules forked from one `$or` share their work. */
function shared(steps: Map<string, Map<Leaf, Step>>, path: string, leaf: Leaf): Step {
  let byLeaf = steps.get(path);
  if (byLeaf === undefined) steps.set(path, (byLeaf = new Map()));
  let step = byLeaf.get(leaf);
  if (step === undefined) byLeaf.set(leaf, (step = Object.freeze({ path, leaf })));
  return step;
}

function mentionsOr(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(mentionsOr);
  if (!isPlainObject(value)) return false;
  return Object.keys(value).some((key) => key === OR_KEY || mentionsOr(value[key]));
}

function compileDrafts(pattern: Record<string, unknown>, expandOr: boolean): Draft[] {
  const drafts: Draft[] = [];
  if (Object.keys(pattern).length > 0) compileObject(drafts, "", pattern, "", expandOr, false);
  return drafts;
}

/** compileObject adds one pattern object's fields to every draft; `errorPath` is its JSON path for errors. */
function compileObject(drafts: Draft[], prefix: string, object: Record<string, unknown>, errorPath: string, expandOr: boolean, inOr: boolean): void {
  const keys = Object.keys(object);
  if (keys.length === 0) throw new InvalidPatternError(errorPath, "empty objects are not allowed");
  for (const key of keys) {
    const value = object[key];
    const keyPath = childPath(errorPath, key);
    if (expandOr && key === OR_KEY) {
      compileOr(drafts, prefix, value, keyPath);
      continue;
    }
    if (inOr && RESERVED_IN_OR.has(key)) {
      throw new InvalidPatternError(keyPath, `${JSON.stringify(key)} is a reserved operator name and cannot be a field name inside $or`);
    }
    const path = prefix === "" ? key : `${prefix}.${key}`;
    if (isPlainObject(value)) {
      compileObject(drafts, path, value, keyPath, expandOr, inOr);
    } else if (Array.isArray(value)) {
      const leaf = compileLeaf(value, keyPath);
      if (drafts.length === 0) drafts.push(new Map());
      for (const draft of drafts) draft.set(path, leaf);
    } else {
      throw new InvalidPatternError(keyPath, `must be an array of match values or a nested pattern object, got ${describeValue(value)}`);
    }
  }
}

function compileOr(drafts: Draft[], prefix: string, value: unknown, errorPath: string): void {
  if (!Array.isArray(value)) {
    throw new InvalidPatternError(errorPath, `$or takes an array of at least 2 pattern objects, got ${describeValue(value)}`);
  }
  if (value.length < 2) throw new InvalidPatternError(errorPath, `$or needs at least 2 pattern objects, got ${value.length}`);
  const before = drafts.splice(0, drafts.length);
  value.forEach((branch, index) => {
    const branchPath = indexPath(errorPath, index);
    if (!isPlainObject(branch)) {
      throw new InvalidPatternError(branchPath, `each $or branch must be a pattern object, got ${describeValue(branch)}`);
    }
    const forked = before.length === 0 ? [new Map<string, Leaf>()] : before.map((d) => new Map(d));
    // Branch fields live at the same event level as the object holding `$or`; only the error path names the branch.
    compileObject(forked, prefix, branch, branchPath, true, true);
    drafts.push(...forked);
    if (drafts.length > MAX_OR_COMBINATIONS) {
      throw new PatternTooComplexError(errorPath, `the pattern expands to more than ${MAX_OR_COMBINATIONS} $or combinations, the EventBridge limit`);
    }
  });
}
