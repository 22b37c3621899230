import { wildcardComplexity } from "./complexity.ts";
import { InvalidPatternError, isPlainObject } from "./errors.ts";
import { collectFields, planPath } from "./fields.ts";
import { checkPatternLength, MAX_WILDCARD_COMPLEXITY, PatternTooComplexError } from "./limits.ts";
import { matchEvent } from "./match.ts";
import { compileRules, type SubRule } from "./rules.ts";
import { extractTypes } from "./type-filter.ts";

export { InvalidPatternError } from "./errors.ts";
export {
  eventSizeProblem,
  MAX_EVENT_BYTES,
  MAX_OR_COMBINATIONS,
  MAX_PATTERN_LENGTH,
  MAX_WILDCARD_COMPLEXITY,
  PatternTooComplexError,
} from "./limits.ts";

/**
 * EventPattern is an AWS EventBridge event pattern as parsed JSON: field names map to arrays of match
 * values / content filters, or to nested patterns; `$or` holds alternative patterns.
 */
export type EventPattern = Record<string, unknown>;

/** CompiledPattern is a validated event pattern, ready to test many events. */
export interface CompiledPattern {
  /** The pattern object that was compiled (not copied; later mutation of it does not change matching). */
  readonly source: EventPattern;
  /** matches tests one event (parsed JSON) against the pattern. */
  matches(event: unknown): boolean;
  /** exact string values the top-level `type` field must take, if the pattern constrains it to a finite set of exact strings in EVERY $or branch; else null (used to filter in SQL) */
  readonly types: readonly string[] | null;
}

/**
 * compilePattern validates an EventBridge event pattern the way EventBridge's engine (event-ruler) does and
 * compiles it into a CompiledPattern. It also applies EventBridge's limits: at most 2048 characters of JSON,
 * 1000 `$or` combinations and a bounded wildcard complexity, so matching any event is cheap. The empty
 * pattern `{}`, which AWS refuses, is accepted here and matches every event. Throws InvalidPatternError
 * (PatternTooComplexError for a limit) naming the JSON path of the first invalid part.
 *
 * @example
 * const paid = compilePattern({ type: ["order.paid"], data: { total: [{ numeric: [">=", 100] }] } });
 * paid.matches({ type: "order.paid", data: { total: 250 } }); // true
 */
export function compilePattern(pattern: unknown): CompiledPattern {
  if (!isPlainObject(pattern)) {
    throw new InvalidPatternError(
      "",
      `an event pattern must be a JSON object, got ${Array.isArray(pattern) ? "an array" : pattern === null ? "null" : typeof pattern}`,
    );
  }
  checkPatternLength(pattern);
  const rules = compileRules(pattern);
  checkWildcards(rules);
  const types = extractTypes(rules);
  const plans = [...new Set(rules.flatMap((rule) => rule.map((step) => step.path)))].map(planPath);
  const matchAll = rules.length === 0;
  return Object.freeze({
    source: pattern,
    types: types === null ? null : Object.freeze(types),
    matches(event: unknown): boolean {
      if (matchAll) return true;
      // Only a JSON object has fields; any other event is matched as if every field were missing.
      const object = typeof event === "object" && event !== null && !Array.isArray(event) ? (event as Record<string, unknown>) : {};
      return matchEvent(rules, collectFields(object, plans));
    },
  });
}

/** checkWildcards refuses a pattern whose wildcards on one field are more complex than EventBridge allows. */
function checkWildcards(rules: readonly SubRule[]): void {
  const byPath = new Map<string, string[]>();
  for (const rule of rules) {
    for (const step of rule) {
      if (step.leaf.wildcards.length === 0) continue;
      const list = byPath.get(step.path) ?? [];
      list.push(...step.leaf.wildcards);
      byPath.set(step.path, list);
    }
  }
  for (const [path, wildcards] of byPath) {
    if (wildcardComplexity(wildcards, MAX_WILDCARD_COMPLEXITY) > MAX_WILDCARD_COMPLEXITY) {
      throw new PatternTooComplexError(
        path,
        "the rule is too complex: use fewer wildcard characters, or fewer repeating character sequences after a wildcard character",
      );
    }
  }
}

/** testPattern compiles `pattern` and tests one event; compile once with compilePattern for repeated use. */
export function testPattern(pattern: unknown, event: unknown): boolean {
  return compilePattern(pattern).matches(event);
}
