import type { StringPredicate } from "./string-matchers.ts";

/** LeafTest decides whether the event value found at a leaf's path (undefined when missing) matches the leaf. */
export type LeafTest = (value: unknown) => boolean;

/** Scalar is a JSON leaf value: the only things content filters ever compare against. */
export type Scalar = string | number | boolean | null;
/** NumberPredicate tests one numeric event value (numeric ranges). */
export type NumberPredicate = (value: number) => boolean;
/** ScalarPredicate tests a leaf value of any JSON type (anything-but filters). */
export type ScalarPredicate = (value: Scalar) => boolean;

/** LeafSpec is everything one leaf array compiles into; each element of the leaf array adds to one of these. */
export interface LeafSpec {
  readonly exactStrings: Set<string>;
  readonly exactNumbers: Set<number>;
  matchTrue: boolean;
  matchFalse: boolean;
  matchNull: boolean;
  readonly stringTests: StringPredicate[];
  readonly numberTests: NumberPredicate[];
  /** anything-but filters: they can match a value of any JSON type, so they run after the typed tests. */
  readonly scalarTests: ScalarPredicate[];
  existsTrue: boolean;
  existsFalse: boolean;
}

const NO_LEAVES = 0;
const NO_MATCH = 1;
const MATCHED = 2;

/**
 * buildLeafTest turns a validated LeafSpec into the closure run per event. Only scalars are leaf values:
 * nested event arrays are flattened, as AWS does, and objects (intermediate nodes) only ever satisfy
 * `{"exists": false}`.
 */
export function buildLeafTest(spec: LeafSpec): LeafTest {
  const matchScalar = buildScalarTest(spec);
  const whenAbsent = spec.existsFalse;

  // Nested arrays are flattened, as AWS does; objects inside them are not leaves of this path.
  const scan = (values: readonly unknown[]): number => {
    let state = NO_LEAVES;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (Array.isArray(value)) {
        const inner = scan(value);
        if (inner === MATCHED) return MATCHED;
        if (inner === NO_MATCH) state = NO_MATCH;
      } else if (isScalar(value)) {
        if (matchScalar(value)) return MATCHED;
        state = NO_MATCH;
      }
    }
    return state;
  };

  return (value) => {
    if (isScalar(value)) return matchScalar(value);
    if (Array.isArray(value)) {
      const state = scan(value);
      return state === MATCHED || (state === NO_LEAVES && whenAbsent);
    }
    return whenAbsent;
  };
}

function isScalar(value: unknown): value is Scalar {
  const type = typeof value;
  return type === "string" || type === "number" || type === "boolean" || value === null;
}

function buildScalarTest(spec: LeafSpec): (value: Scalar) => boolean {
  if (spec.existsTrue) return () => true;
  const { exactStrings, exactNumbers, matchTrue, matchFalse, matchNull } = spec;
  const stringTests = spec.stringTests.slice();
  const numberTests = spec.numberTests.slice();
  const scalarTests = spec.scalarTests.slice();
  return (value) => {
    switch (typeof value) {
      case "string":
        if (exactStrings.has(value)) return true;
        for (let i = 0; i < stringTests.length; i++) if ((stringTests[i] as StringPredicate)(value)) return true;
        break;
      case "number":
        if (exactNumbers.has(value)) return true;
        for (let i = 0; i < numberTests.length; i++) if ((numberTests[i] as NumberPredicate)(value)) return true;
        break;
      case "boolean":
        if (value ? matchTrue : matchFalse) return true;
        break;
      default:
        if (matchNull) return true;
    }
    for (let i = 0; i < scalarTests.length; i++) if ((scalarTests[i] as ScalarPredicate)(value)) return true;
    return false;
  };
}
