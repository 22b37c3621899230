/**
 * pattern re-exports the EventBridge event-pattern matcher from `./pattern/index.ts`, so callers can
 * import `./pattern.ts` while the implementation lives in its own folder.
 */

export type { CompiledPattern, EventPattern } from "./pattern/index.ts";
export { compilePattern, eventSizeProblem, InvalidPatternError, PatternTooComplexError, testPattern } from "./pattern/index.ts";
