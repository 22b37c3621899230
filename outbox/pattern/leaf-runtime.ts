import type { StringPredicate } from "./string-matchers.ts";

/** Scalar is a JSON leaf value: the only things match values and content filters ever compare against. */
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
  /** Plain match strings that are not IP literals: the exact values a `type` leaf can pin down for SQL. */
  readonly plainStrings: string[];
  /** Anything other than plain strings was listed (numbers, filters, IP literals, booleans, null). */
  notOnlyPlainStrings: boolean;
  /** Every wildcard operand (plain and anything-but), for the complexity limit. */
  readonly wildcards: string[];
}

/**
 * Leaf is one compiled leaf array. Matching is split the way event-ruler splits it: `test` answers for one
 * leaf value of the event (any listed value or filter matching it, `{"exists": true}` matching every value),
 * while `{"exists": false}` is not a value test at all but a question about the path, answered by the matcher.
 */
export interface Leaf {
  readonly test: ScalarPredicate;
  /** At least one element matches values (a match value, a filter or `{"exists": true}`). */
  readonly hasValues: boolean;
  /** The leaf lists `{"exists": false}`: it is also satisfied when the event has no value at the path. */
  readonly absent: boolean;
  /** The exact strings the leaf accepts when it accepts nothing else, else null. */
  readonly onlyStrings: readonly string[] | null;
  readonly wildcards: readonly string[];
}

/** newLeafSpec is an empty LeafSpec for compileLeaf to fill. */
export function newLeafSpec(): LeafSpec {
  return {
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
    plainStrings: [],
    notOnlyPlainStrings: false,
    wildcards: [],
  };
}

/** buildLeaf turns a validated LeafSpec into the Leaf the matcher runs per event value. */
export function buildLeaf(spec: LeafSpec): Leaf {
  const hasValues =
    spec.existsTrue ||
    spec.exactStrings.size + spec.exactNumbers.size + spec.stringTests.length + spec.numberTests.length + spec.scalarTests.length > 0 ||
    spec.matchTrue ||
    spec.matchFalse ||
    spec.matchNull;
  const onlyStrings = spec.notOnlyPlainStrings || spec.existsTrue || spec.existsFalse ? null : Object.freeze([...new Set(spec.plainStrings)]);
  return Object.freeze({
    test: spec.existsTrue ? () => true : scalarTest(spec),
    hasValues,
    absent: spec.existsFalse,
    onlyStrings,
    wildcards: Object.freeze(spec.wildcards.slice()),
  });
}

function scalarTest(spec: LeafSpec): ScalarPredicate {
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
        // event-ruler compares numbers it can hold as a double; anything else (1e400 parses to Infinity here)
        // is only ever equal to the same literal, never inside a range.
        if (Number.isFinite(value)) {
          for (let i = 0; i < numberTests.length; i++) if ((numberTests[i] as NumberPredicate)(value)) return true;
        }
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
