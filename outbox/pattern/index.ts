import { compileObject } from "./compile-object.ts";
import { InvalidPatternError, isPlainObject } from "./errors.ts";
import { extractTypes } from "./type-filter.ts";

export { InvalidPatternError } from "./errors.ts";

/**
 * EventPattern is an AWS EventBridge event pattern as parsed JSON: field names map to arrays of match
 * values / content filters, or to nested patterns; `$or` holds alternative patterns.
 */
export type EventPattern = Record<string, unknown>;

/** CompiledPattern is a validated event pattern turned into closures, ready to test many events. */
export interface CompiledPattern {
  /** The pattern object that was compiled (not copied; later mutation of it does not change matching). */
  readonly source: EventPattern;
  /** matches tests one event (parsed JSON) against the pattern without allocating. */
  matches(event: unknown): boolean;
  /** exact string values the top-level `type` field must take, if the pattern constrains it to a finite set of exact strings in EVERY $or branch; else null (used to filter in SQL) */
  readonly types: readonly string[] | null;
}

/**
 * compilePattern validates an EventBridge event pattern and compiles it into a CompiledPattern. All
 * parsing (regexes, wildcards, CIDR masks, numeric ranges) happens here so `matches` does no set-up work.
 * Throws InvalidPatternError naming the JSON path of the first invalid part.
 */
export function compilePattern(pattern: unknown): CompiledPattern {
  if (!isPlainObject(pattern)) {
    throw new InvalidPatternError("", `an event pattern must be a JSON object, got ${Array.isArray(pattern) ? "an array" : pattern === null ? "null" : typeof pattern}`);
  }
  const test = compileObject(pattern, "", 1, false, true);
  const whenNotObject = test(undefined);
  const types = extractTypes(pattern);
  return Object.freeze({
    source: pattern,
    types: types === null ? null : Object.freeze(types),
    matches(event: unknown): boolean {
      // Only a JSON object has fields; any other event is matched as if every field were missing.
      if (typeof event !== "object" || event === null || Array.isArray(event)) return whenNotObject;
      return test(event as Record<string, unknown>);
    },
  });
}

/** testPattern compiles `pattern` and tests one event; compile once with compilePattern for repeated use. */
export function testPattern(pattern: unknown, event: unknown): boolean {
  return compilePattern(pattern).matches(event);
}
