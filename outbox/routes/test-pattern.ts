import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { ValidationError } from "../../src/errors.ts";
import type { AppEnv } from "../../src/http/env.ts";
import { defineRoute, problem } from "../../src/http/route.ts";
import { compilePattern, eventSizeProblem, InvalidPatternError, PatternTooComplexError } from "../pattern.ts";
import { body, json } from "./shared.ts";

// Measuring the event's size serializes it recursively; arbitrary JSON from this endpoint must not
// be able to exhaust the stack. Events the platform appends are shallow by their schemas.
const MAX_EVENT_DEPTH = 100;

/** nestingDepth measures how deep objects and arrays nest, iteratively, stopping past `cap`. */
function nestingDepth(value: unknown, cap: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d + 1 > deepest) deepest = d + 1;
    if (deepest > cap) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
}

/** testPatternRoute adds the admin's TestEventPattern. */
export function testPatternRoute(api: OpenAPIHono<AppEnv>): void {
  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/admin/events/test-pattern",
        tags: ["admin"],
        summary: "Test an EventBridge event pattern against an event, like TestEventPattern",
        request: body(z.object({ pattern: z.record(z.string(), z.unknown()), event: z.record(z.string(), z.unknown()) })),
        responses: {
          200: json(z.object({ result: z.boolean() })),
          400: problem("Invalid pattern"),
          401: problem("Not signed in"),
          403: problem("Admins only"),
        },
      },
    ),
    (c) => {
      const { pattern, event } = c.req.valid("json");
      if (nestingDepth(event, MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH) {
        throw new ValidationError(
          `The event nests deeper than ${MAX_EVENT_DEPTH} levels.`,
          [{ path: "event", message: "too deeply nested" }],
          "EVENTS.EVENT_TOO_DEEP",
        );
      }
      const tooLarge = eventSizeProblem(event);
      if (tooLarge !== null)
        throw new ValidationError(`The event is too large: ${tooLarge}.`, [{ path: "event", message: tooLarge }], "EVENTS.EVENT_TOO_LARGE");
      try {
        return c.json({ result: compilePattern(pattern).matches(event) }, 200);
      } catch (err) {
        if (err instanceof InvalidPatternError) {
          const code = err instanceof PatternTooComplexError ? "EVENTS.PATTERN_TOO_COMPLEX" : "EVENTS.INVALID_PATTERN";
          throw new ValidationError(`Invalid event pattern: ${err.message}`, [{ path: `pattern.${err.path}`.replace(/\.$/, ""), message: err.message }], code);
        }
        throw err;
      }
    },
  );
}
