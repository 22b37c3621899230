import type { Scalar } from "./leaf-runtime.ts";

/**
 * Field is one leaf value of an event at a dotted path, with the array elements it sits in: `membership`
 * holds pairs [arrayId, index, arrayId, index, ...] in increasing arrayId order. As in event-ruler's Event,
 * only objects and arrays nested in an array are members of it; a scalar directly in an array is not, so the
 * values of `"tags": ["a", "b"]` are two values of one field, not two elements.
 */
export interface Field {
  readonly value: Scalar;
  readonly membership: readonly number[];
}

/** EventFields holds an event's leaf values at the dotted paths a pattern names, the shape event-ruler matches. */
export interface EventFields {
  readonly byPath: ReadonlyMap<string, readonly Field[]>;
  /** Some value sits inside an array element, so array consistency can matter. */
  readonly inElements: boolean;
}

/**
 * PathPlan is a dotted path prepared for lookups: `keys[i]` lists, for the path text starting at the i-th
 * step, every key that could sit there (one step, or several joined by "."), each with the step it leads to.
 */
export interface PathPlan {
  readonly path: string;
  readonly keys: readonly (readonly (readonly [key: string, next: number])[])[];
}

/** planPath prepares a dotted path for collectFields. */
export function planPath(path: string): PathPlan {
  const starts = [0];
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 46) starts.push(i + 1);
  const keys = starts.map((start, i) =>
    starts
      .slice(i + 1)
      .map((next, k) => [path.slice(start, next - 1), i + k + 1] as const)
      .concat([[path.slice(start), starts.length] as const]),
  );
  return { path, keys };
}

const NO_MEMBERSHIP: readonly number[] = Object.freeze([]);

// Frames still to visit: a node, the step it stands at, and the array elements it is in. Shared by every
// call because collecting is synchronous and never re-enters itself, so matching allocates less per event.
const nodes: unknown[] = [];
const steps: number[] = [];
const memberships: (readonly number[])[] = [];

/**
 * collectFields reads the values at each planned path of `event`. Event keys join with "." as in
 * event-ruler, so a key "a.b" and nested a → b reach the same path: at each object every key that the rest
 * of the path could begin with is looked up. Only the named paths are visited, so the cost follows the
 * pattern, not the size of the event. Arrays are numbered by identity, so two paths through one array
 * agree on its elements.
 */
export function collectFields(event: Record<string, unknown>, plans: readonly PathPlan[]): EventFields {
  const byPath = new Map<string, Field[]>();
  let arrayIds: Map<unknown[], number> | undefined;
  let inElements = false;
  // A throw mid-walk (a getter on a non-JSON event) must not leave frames behind for the next event.
  nodes.length = steps.length = memberships.length = 0;
  for (const plan of plans) {
    let fields: Field[] | undefined;
    const last = plan.keys.length;
    nodes.push(event);
    steps.push(0);
    memberships.push(NO_MEMBERSHIP);
    while (nodes.length > 0) {
      const node = nodes.pop();
      const step = steps.pop() as number;
      const membership = memberships.pop() as readonly number[];
      if (Array.isArray(node)) {
        arrayIds ??= new Map();
        let id = arrayIds.get(node);
        if (id === undefined) arrayIds.set(node, (id = arrayIds.size));
        for (let i = node.length - 1; i >= 0; i--) {
          const element: unknown = node[i];
          if (typeof element === "object" && element !== null) {
            // An object element has no value at this very path, only deeper ones.
            if (step === last && !Array.isArray(element)) continue;
            nodes.push(element);
            steps.push(step);
            memberships.push([...membership, id, i]);
          } else if (step === last) {
            nodes.push(element);
            steps.push(step);
            memberships.push(membership);
          }
        }
      } else if (step === last) {
        if (typeof node === "string" || typeof node === "number" || typeof node === "boolean" || node === null) {
          (fields ??= []).push({ value: node, membership });
          if (membership.length > 0) inElements = true;
        }
      } else if (typeof node === "object" && node !== null) {
        for (const [key, next] of plan.keys[step] as readonly (readonly [string, number])[]) {
          if (Object.hasOwn(node, key)) {
            nodes.push((node as Record<string, unknown>)[key]);
            steps.push(next);
            memberships.push(membership);
          }
        }
      }
    }
    if (fields !== undefined) byPath.set(plan.path, fields);
  }
  return { byPath, inElements };
}
