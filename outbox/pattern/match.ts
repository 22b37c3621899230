import type { EventFields, Field } from "./fields.ts";
import type { Step, SubRule } from "./rules.ts";

const NONE: readonly Field[] = Object.freeze([]);
const EMPTY: readonly number[] = Object.freeze([]);

/** Fields grouped by the element of one array they sit in: arrayId → element index → fields. */
type ByElement = Map<number, Map<number, Field[]>>;

/**
 * merge returns the union of two memberships, or null when they put one array at two different elements:
 * event-ruler's array consistency (ArrayMembership.checkArrayConsistency). Both are sorted by arrayId.
 */
function merge(a: readonly number[], b: readonly number[]): readonly number[] | null {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && (a[i] as number) < (b[j] as number))) {
      out.push(a[i] as number, a[i + 1] as number);
      i += 2;
    } else if (i >= a.length || (b[j] as number) < (a[i] as number)) {
      out.push(b[j] as number, b[j + 1] as number);
      j += 2;
    } else {
      if (a[i + 1] !== b[j + 1]) return null;
      out.push(a[i] as number, a[i + 1] as number);
      i += 2;
      j += 2;
    }
  }
  return out;
}

function groupByElement(fields: readonly Field[]): ByElement {
  const index: ByElement = new Map();
  for (const field of fields) {
    const m = field.membership;
    for (let k = 0; k < m.length; k += 2) {
      let elements = index.get(m[k] as number);
      if (elements === undefined) index.set(m[k] as number, (elements = new Map()));
      let list = elements.get(m[k + 1] as number);
      if (list === undefined) elements.set(m[k + 1] as number, (list = []));
      list.push(field);
    }
  }
  return index;
}

/**
 * matchEvent is true when the collected event fields match at least one sub-rule. When no value sits in an array
 * element no choice can constrain another, so each step is judged on its own without building a Matcher.
 */
export function matchEvent(rules: readonly SubRule[], fields: EventFields): boolean {
  if (fields.inElements) return new Matcher(fields).anyRuleMatches(rules);
  // `$or` branches share steps; a step's answer is worked out once per event.
  const known = rules.length > 1 ? new Map<Step, boolean>() : undefined;
  for (const rule of rules) {
    let holds = true;
    for (let i = 0; i < rule.length && holds; i++) {
      const step = rule[i] as Step;
      let answer = known?.get(step);
      if (answer === undefined) {
        answer = stepHolds(step, fields.byPath.get(step.path));
        known?.set(step, answer);
      }
      holds = answer;
    }
    if (holds) return true;
  }
  return false;
}

function stepHolds(step: Step, values: readonly Field[] | undefined): boolean {
  if (values === undefined) return step.leaf.absent;
  if (!step.leaf.hasValues) return false;
  for (let i = 0; i < values.length; i++) if (step.leaf.test((values[i] as Field).value)) return true;
  return false;
}

/**
 * Matcher answers whether one event matches any sub-rule, following event-ruler's StructuredFinder: steps
 * are taken in path order; a value step picks an event value that satisfies the leaf and is consistent with
 * the array elements chosen so far; an `{"exists": false}` step holds when no value at the path is consistent
 * with them. So `exists: false` under an array is judged against the elements earlier steps chose, or against
 * every element when no earlier step chose one, exactly as on AWS.
 *
 * The work is shared and bounded: each step's matching values are computed once per event for all sub-rules
 * (`$or` branches share steps), candidate values are looked up by array element instead of scanned, and a
 * failed (step, relevant choices) state is never explored twice, so large arrays cost linear time.
 */
export class Matcher {
  // Caches for this one event; the ones only array consistency needs are made on first use.
  private readonly matching = new Map<Step, readonly Field[]>();
  private matchingIndex: Map<Step, ByElement> | undefined;
  private pathIndex: Map<string, ByElement> | undefined;
  private pathArrays: Map<string, ReadonlySet<number>> | undefined;

  constructor(private readonly fields: EventFields) {}

  /** anyRuleMatches is true when at least one sub-rule matches the event. */
  anyRuleMatches(rules: readonly SubRule[]): boolean {
    for (const rule of rules) if (this.ruleMatches(rule)) return true;
    return false;
  }

  private ruleMatches(rule: SubRule): boolean {
    // A value step with nothing to match fails the sub-rule whatever the arrays say.
    for (const step of rule) if (!step.leaf.absent && this.matchesOf(step).length === 0) return false;
    const lastUse = this.lastUse(rule);
    const failed = new Set<string>();
    const walk = (i: number, chosen: readonly number[]): boolean => {
      if (i === rule.length) return true;
      // Only choices in arrays some later step has values in can change the answer from here on.
      let key = `${i}`;
      for (let k = 0; k < chosen.length; k += 2) {
        if (lastUse(chosen[k] as number) >= i) key += `,${chosen[k]}:${chosen[k + 1]}`;
      }
      if (failed.has(key)) return false;
      const step = rule[i] as Step;
      if (step.leaf.absent && !this.anyConsistent(step.path, chosen) && walk(i + 1, chosen)) return true;
      if (step.leaf.hasValues) {
        for (const field of this.consistent(this.matchesOf(step), this.matchingByElement(step), step.path, chosen)) {
          const next = merge(chosen, field.membership);
          if (next !== null && walk(i + 1, next)) return true;
        }
      }
      failed.add(key);
      return false;
    };
    return walk(0, EMPTY);
  }

  /** matchesOf lists the event values at the step's path that satisfy its leaf, once per event. */
  private matchesOf(step: Step): readonly Field[] {
    let list = this.matching.get(step);
    if (list === undefined) {
      const all = this.fields.byPath.get(step.path) ?? NONE;
      list = step.leaf.hasValues ? all.filter((f) => step.leaf.test(f.value)) : NONE;
      this.matching.set(step, list);
    }
    return list;
  }

  private matchingByElement(step: Step): ByElement {
    this.matchingIndex ??= new Map();
    let index = this.matchingIndex.get(step);
    if (index === undefined) this.matchingIndex.set(step, (index = groupByElement(this.matchesOf(step))));
    return index;
  }

  private arraysAt(path: string): ReadonlySet<number> {
    this.pathArrays ??= new Map();
    let arrays = this.pathArrays.get(path);
    if (arrays === undefined) {
      const ids = new Set<number>();
      for (const field of this.fields.byPath.get(path) ?? NONE) {
        for (let k = 0; k < field.membership.length; k += 2) ids.add(field.membership[k] as number);
      }
      this.pathArrays.set(path, (arrays = ids));
    }
    return arrays;
  }

  /**
   * consistent narrows `fields` (at `path`) to those in the elements already chosen, the way event-ruler's
   * FieldIndex.getConsistent does: through the first chosen array this path lives in, by direct lookup.
   */
  private consistent(fields: readonly Field[], byElement: ByElement, path: string, chosen: readonly number[]): readonly Field[] {
    if (chosen.length === 0 || fields.length === 0) return fields;
    const arrays = this.arraysAt(path);
    for (let k = 0; k < chosen.length; k += 2) {
      if (!arrays.has(chosen[k] as number)) continue;
      const inElement = byElement.get(chosen[k] as number)?.get(chosen[k + 1] as number) ?? NONE;
      return chosen.length === 2 ? inElement : inElement.filter((f) => merge(chosen, f.membership) !== null);
    }
    return fields;
  }

  private anyConsistent(path: string, chosen: readonly number[]): boolean {
    const fields = this.fields.byPath.get(path) ?? NONE;
    this.pathIndex ??= new Map();
    let index = this.pathIndex.get(path);
    if (index === undefined && chosen.length > 0) this.pathIndex.set(path, (index = groupByElement(fields)));
    return this.consistent(fields, index ?? new Map(), path, chosen).length > 0;
  }

  /** lastUse gives, per array, the last step of `rule` with values in it (-1 if none), computed on demand. */
  private lastUse(rule: SubRule): (arrayId: number) => number {
    const known = new Map<number, number>();
    return (arrayId) => {
      let last = known.get(arrayId);
      if (last === undefined) {
        last = rule.length - 1;
        while (last >= 0 && !this.arraysAt((rule[last] as Step).path).has(arrayId)) last--;
        known.set(arrayId, last);
      }
      return last;
    };
  }
}
