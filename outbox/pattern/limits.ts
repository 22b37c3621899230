/**
 * EventBridge's own limits on patterns and events, applied here so that no pattern (sent to the admin API or
 * declared in code) and no event can make matching do unbounded work. Each number is AWS's documented default.
 */
import { InvalidPatternError } from "./errors.ts";

/** MAX_PATTERN_LENGTH is EventBridge's event pattern quota: 2048 characters (of the pattern's JSON text). */
export const MAX_PATTERN_LENGTH = 2048;

/** MAX_OR_COMBINATIONS bounds how many `$or`-free alternatives a pattern may expand to, as EventBridge does. */
export const MAX_OR_COMBINATIONS = 1000;

/** MAX_RULE_FIELDS is event-ruler's cap on the fields of one alternative (GenericMachine.MAXIMUM_RULE_SIZE). */
export const MAX_RULE_FIELDS = 256;

/**
 * MAX_WILDCARD_COMPLEXITY caps event-ruler's machine complexity for wildcards: how many partial wildcard
 * matches one value can keep alive at once on one field. AWS refuses `*:*:*:*:*:event-bus/*` (11) as "too
 * complex" and accepts `/Users/*\/dir/dir/dir/dir/dir/doc.txt` (7); 10 is the per-rule limit event-ruler's
 * README suggests.
 */
export const MAX_WILDCARD_COMPLEXITY = 10;

/** MAX_EVENT_BYTES is the PutEvents entry size limit: 256 KB of UTF-8 JSON. */
export const MAX_EVENT_BYTES = 256 * 1024;

/** PatternTooComplexError is an InvalidPatternError for a pattern over a limit rather than malformed. */
export class PatternTooComplexError extends InvalidPatternError {
  constructor(path: string, reason: string) {
    super(path, reason);
    this.name = "PatternTooComplexError";
  }
}

/**
 * checkPatternLength throws PatternTooComplexError when the pattern's JSON text is longer than
 * MAX_PATTERN_LENGTH. It is measured as compact JSON, so whitespace a client sent does not count.
 */
export function checkPatternLength(pattern: unknown): void {
  let length: number;
  try {
    length = JSON.stringify(pattern)?.length ?? 0;
  } catch {
    // Cyclic or absurdly deep objects cannot be JSON text of any length EventBridge accepts.
    throw new PatternTooComplexError("", "the pattern cannot be written as JSON");
  }
  if (length > MAX_PATTERN_LENGTH) {
    throw new PatternTooComplexError("", `the pattern is ${length} characters of JSON; EventBridge allows at most ${MAX_PATTERN_LENGTH}`);
  }
}

/**
 * eventSizeProblem returns why `event` is over MAX_EVENT_BYTES (its UTF-8 JSON size), or null when it fits.
 * Matching itself never refuses an event; callers that accept events from outside check this first.
 */
export function eventSizeProblem(event: unknown): string | null {
  let text: string;
  try {
    text = JSON.stringify(event) ?? "";
  } catch {
    return "the event cannot be written as JSON";
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes, so only texts that could be over the limit are measured exactly.
  if (text.length * 3 <= MAX_EVENT_BYTES) return null;
  const bytes = Buffer.byteLength(text, "utf8");
  return bytes > MAX_EVENT_BYTES ? `the event is ${bytes} bytes of JSON; EventBridge allows at most ${MAX_EVENT_BYTES} (256 KB)` : null;
}
