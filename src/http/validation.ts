import type { Hook } from "@hono/zod-openapi";
import { z } from "zod";
import type { FieldError } from "../errors.ts";
import { ValidationError } from "../errors.ts";

/** toFieldErrors flattens zod issues into `errors[]` entries with dotted paths. */
export function toFieldErrors(error: z.ZodError, prefix = ""): FieldError[] {
  const path = (...parts: PropertyKey[]) => [prefix, ...parts.map(String)].filter(Boolean).join(".");
  return error.issues.flatMap((i): FieldError[] =>
    // An unknown key is reported on its parent object; name each key so `errors[]` points at it.
    i.code === "unrecognized_keys"
      ? i.keys.map((k) => ({ path: path(...i.path, k), message: `Unrecognized key: "${k}"`, code: i.code }))
      : [{ path: path(...i.path), message: i.message, code: i.code }],
  );
}

/**
 * validationHook is the one hook every validated route shares: a failed parse becomes a 400
 * problem with per-field errors, whatever the target (json, query, param, header).
 */
export const validationHook: Hook<unknown, never, string, unknown> = (result) => {
  if (!result.success) {
    const target = (result as { target?: string }).target ?? "request";
    throw new ValidationError(
      `The ${target === "json" ? "request body" : target} is invalid.`,
      toFieldErrors(result.error as z.ZodError, target === "json" ? "" : target),
    );
  }
};

const SYNC_FIRST = Symbol("syncFirst");

/**
 * syncFirst makes a request schema's `safeParseAsync`, which the route validators call, run zod's
 * synchronous parse: a quarter of the asynchronous one's cost (about 0.3 against 1.2 µs for a
 * page query) on every validated request. A schema with asynchronous parts (async refinements or
 * transforms, where the synchronous parse throws `$ZodAsyncError`) is parsed asynchronously as
 * before; the results and issues are the same either way. Applied once per schema instance
 * (`defineRoute` does it for query, params, headers, cookies and JSON bodies); other uses of the
 * schema see the same answers.
 */
export function syncFirst<T>(schema: T): T {
  const s = schema as (z.ZodType & { [SYNC_FIRST]?: true }) | undefined;
  if (!(s instanceof z.ZodType) || s[SYNC_FIRST]) return schema;
  const parseAsync = s.safeParseAsync;
  Object.defineProperties(s, {
    [SYNC_FIRST]: { value: true },
    safeParseAsync: {
      configurable: true,
      writable: true,
      value: async function safeParseSyncFirst(this: z.ZodType, data: unknown, params?: z.core.ParseContext<z.core.$ZodIssue>) {
        return parseSyncFirst(this, data, params, parseAsync);
      },
    },
  });
  return schema;
}

/**
 * parseSyncFirst is what `syncFirst` makes `safeParseAsync` do, without its promise when the
 * schema parses synchronously (a natively served route validates its query so, with no await):
 * the result at once, or a promise from the asynchronous parse for a schema with asynchronous parts.
 */
export function parseSyncFirst(
  schema: z.ZodType,
  data: unknown,
  params?: z.core.ParseContext<z.core.$ZodIssue>,
  parseAsync: z.ZodType["safeParseAsync"] = schema.safeParseAsync,
): z.ZodSafeParseResult<unknown> | Promise<z.ZodSafeParseResult<unknown>> {
  try {
    return schema.safeParse(data, params);
  } catch (err) {
    if (err instanceof z.core.$ZodAsyncError) return parseAsync.call(schema, data, params);
    throw err;
  }
}
