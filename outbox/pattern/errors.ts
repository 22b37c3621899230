/**
 * InvalidPatternError is thrown by `compilePattern` when an event pattern is not valid EventBridge syntax.
 * `path` is the JSON path of the offending part (`""` for the pattern itself, `$or[1].detail.price`
 * inside an `$or` branch) and the message always starts with that path, then says what is wrong.
 */
export class InvalidPatternError extends Error {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`${path === "" ? "(pattern)" : path}: ${reason}`);
    this.name = "InvalidPatternError";
    this.path = path;
    this.reason = reason;
  }
}

// Keys that read well unquoted; anything else (dots, spaces, empty) is bracket-quoted so the path stays unambiguous.
const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/;

/** childPath appends an object key to a JSON path, bracket-quoting keys that would be ambiguous. */
export function childPath(parent: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** indexPath appends an array index to a JSON path. */
export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** describeValue names a JSON value's kind for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty array" : "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(value)}`;
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** isPlainObject is true for JSON objects: not null, not an array, not a class instance such as Date. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
