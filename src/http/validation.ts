import type { Hook } from "@hono/zod-openapi";
import type { z } from "zod";
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
