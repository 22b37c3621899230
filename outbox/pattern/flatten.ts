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

/** EventFields indexes an event's leaf values by dotted path, the shape event-ruler matches against. */
export interface EventFields {
  readonly byPath: ReadonlyMap<string, readonly Field[]>;
}

const NO_MEMBERSHIP: readonly number[] = Object.freeze([]);

/**
 * segmentsOf splits a dotted path into its steps the way Java's `String.split("\\.")` does (trailing empty
 * steps dropped), which is how event-ruler records the steps a pattern uses.
 */
export function segmentsOf(path: string): string[] {
  const parts = path.split(".");
  while (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/**
 * flattenEvent walks `event` (a JSON object) into EventFields, joining keys with "." as event-ruler does, so
 * an event key "a.b" and a nested a → b give the same path. Keys made of steps no pattern uses are skipped
 * without being read, which is what keeps matching cheap on large events. The walk uses its own stack, so a
 * deeply nested event cannot overflow the call stack.
 */
export function flattenEvent(event: Record<string, unknown>, usedSteps: ReadonlySet<string>): EventFields {
  const byPath = new Map<string, Field[]>();
  const used = (key: string) => usedSteps.has(key) || (key.includes(".") && segmentsOf(key).every((s) => usedSteps.has(s)));
  let arrays = 0;
  // Each frame is a value still to visit: its path and the array elements it is in.
  const stack: { value: unknown; path: string; membership: readonly number[] }[] = [];
  const pushObject = (object: Record<string, unknown>, prefix: string, membership: readonly number[]) => {
    const keys = Object.keys(object);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      if (used(key)) stack.push({ value: object[key], path: prefix === "" ? key : `${prefix}.${key}`, membership });
    }
  };
  pushObject(event, "", NO_MEMBERSHIP);
  while (stack.length > 0) {
    const { value, path, membership } = stack.pop()!;
    if (Array.isArray(value)) {
      const id = arrays++;
      for (let i = value.length - 1; i >= 0; i--) {
        const element: unknown = value[i];
        if (typeof element === "object" && element !== null) {
          stack.push({ value: element, path, membership: [...membership, id, i] });
        } else {
          stack.push({ value: element, path, membership });
        }
      }
    } else if (typeof value === "object" && value !== null) {
      pushObject(value as Record<string, unknown>, path, membership);
    } else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean" || value === null) {
      let fields = byPath.get(path);
      if (fields === undefined) byPath.set(path, (fields = []));
      fields.push({ value, membership });
    }
  }
  return { byPath };
}
