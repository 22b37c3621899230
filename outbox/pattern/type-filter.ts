import { isPlainObject } from "./errors.ts";
import { isIpLiteral } from "./ip.ts";
import { OR_KEY } from "./compile-object.ts";

const TYPE_KEY = "type";

/**
 * extractTypes lists the exact strings the top-level `type` field must equal for `pattern` to match, or
 * returns null when the pattern leaves `type` open (no `type` key, a content filter, or an `$or` branch
 * without an exact `type`). It must only be called on a pattern that already compiled.
 */
export function extractTypes(pattern: Record<string, unknown>): string[] | null {
  const types = objectTypes(pattern);
  return types === null ? null : [...types];
}

/**
 * objectTypes computes the constraint one pattern object puts on `type`. The object's own `type` leaf
 * and each `$or` (the union of its branches) are AND-ed, so their sets intersect.
 */
function objectTypes(pattern: Record<string, unknown>): Set<string> | null {
  let result = Object.hasOwn(pattern, TYPE_KEY) ? leafTypes(pattern[TYPE_KEY]) : null;
  if (Object.hasOwn(pattern, OR_KEY)) {
    const union = orTypes(pattern[OR_KEY]);
    if (union !== null) result = result === null ? union : intersect(result, union);
  }
  return result;
}

function orTypes(branches: unknown): Set<string> | null {
  if (!Array.isArray(branches)) return null;
  const union = new Set<string>();
  for (const branch of branches) {
    const types = isPlainObject(branch) ? objectTypes(branch) : null;
    if (types === null) return null;
    for (const type of types) union.add(type);
  }
  return union;
}

function leafTypes(leaf: unknown): Set<string> | null {
  if (!Array.isArray(leaf)) return null;
  const types = new Set<string>();
  for (const value of leaf) {
    // An IP literal also matches other spellings of the same address, so it is not one exact string.
    if (typeof value !== "string" || isIpLiteral(value)) return null;
    types.add(value);
  }
  return types;
}

function intersect(a: ReadonlySet<string>, b: ReadonlySet<string>): Set<string> {
  const both = new Set<string>();
  for (const value of a) if (b.has(value)) both.add(value);
  return both;
}
