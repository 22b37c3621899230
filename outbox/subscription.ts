// A subscription's filter comes from two places: the definitions it names in `on` (which also
// type its handler) and an optional content pattern that narrows them. This file turns both
// into the one matcher the worker uses, with the exact type list it pushes into SQL.
import type { AnyEventDefinition } from "../src/events/definition.ts";
import type { EventRegistry } from "../src/events/registry.ts";
import { type CompiledPattern, compilePattern, InvalidPatternError } from "./pattern.ts";
import type { SubscriptionDefinition } from "./types.ts";

/** InvalidSubscriptionError: a subscription definition that cannot run (bad pattern, name, options). */
export class InvalidSubscriptionError extends Error {
  constructor(name: string, reason: string) {
    super(`subscription ${name}: ${reason}`);
    this.name = "InvalidSubscriptionError";
  }
}

/**
 * defineSubscription declares a subscription; the events its body gets are a union typed from
 * `on`, so `switch (event.type)` narrows `event.data`. It checks what it can without the
 * registry (one body, `on` where the body needs it, the pattern and its types); the outbox
 * checks the rest when it subscribes.
 *
 * @example
 * export const fanOut = defineSubscription({
 *   name: "timelines.fan-out",
 *   on: [PostCreated, UserFollowed],
 *   handler: async (event, { tx }) => {
 *     if (event.type === "post.created") await addToTimelines(tx, event.data.postId);
 *   },
 * });
 */
export function defineSubscription<D extends AnyEventDefinition>(def: SubscriptionDefinition<D>): SubscriptionDefinition<D> {
  checkedPattern(def);
  return def;
}

/**
 * compileFilter turns a subscription's `on` and `pattern` into the matcher the worker uses.
 * Its `types` is the SQL type filter: the types in `on`, narrowed by the pattern's when it names
 * some. A relay without `on` takes every public type the registry knows; the registry holds every
 * module's events even when this process hosts only some, so a relay running anywhere carries
 * the same events. Its types are read from the registry when asked for, since the relays are
 * declared before the modules register their events.
 */
export function compileFilter(def: SubscriptionDefinition, registry: EventRegistry): CompiledPattern {
  const pattern = checkedPattern(def);
  if (def.on) {
    for (const d of def.on) {
      if (registry.get(d.type) !== d) {
        throw new InvalidSubscriptionError(def.name, `consumes "${d.type}", which is not a registered definition (list it in its module's events)`);
      }
    }
    const consumed = new Set(def.on.map((d) => d.type));
    const types = Object.freeze([...(pattern.types ?? consumed)].sort());
    return Object.freeze({
      source: pattern.source,
      types,
      matches: (event: unknown) => consumed.has(typeOf(event)) && pattern.matches(event),
    });
  }
  let publicTypes: readonly string[] | undefined;
  let types: readonly string[] = [];
  return Object.freeze({
    source: pattern.source,
    get types(): readonly string[] {
      const now = registry.publicTypes();
      if (now !== publicTypes) {
        publicTypes = now;
        types = Object.freeze(pattern.types ? now.filter((t) => pattern.types!.includes(t)) : now);
      }
      return types;
    },
    matches: (event: unknown) => registry.isPublic(typeOf(event)) && pattern.matches(event),
  });
}

/** checkedPattern checks a definition's body, `on` and pattern, and returns the compiled pattern. */
function checkedPattern(def: SubscriptionDefinition): CompiledPattern {
  const bodies = [def.handler, def.handleBatch, def.batchHandler].filter(Boolean).length;
  if (bodies !== 1) throw new InvalidSubscriptionError(def.name, "give exactly one of handler, handleBatch or batchHandler");
  if (def.on === undefined) {
    if (!def.batchHandler) throw new InvalidSubscriptionError(def.name, "name the events it consumes in `on`");
  } else if (!Array.isArray(def.on) || def.on.length === 0) {
    throw new InvalidSubscriptionError(def.name, "`on` must list at least one event definition");
  }
  let pattern: CompiledPattern;
  try {
    pattern = compilePattern(def.pattern ?? {});
  } catch (err) {
    if (err instanceof InvalidPatternError) throw new InvalidSubscriptionError(def.name, `invalid pattern: ${err.message}`);
    throw err;
  }
  if (def.on && pattern.types) {
    const consumed = new Set(def.on.map((d) => d.type));
    const extra = pattern.types.filter((t) => !consumed.has(t));
    if (extra.length > 0) throw new InvalidSubscriptionError(def.name, `pattern names ${extra.map((t) => `"${t}"`).join(", ")}, which \`on\` does not list`);
  }
  return pattern;
}

// The worker hands envelopes; the matcher's contract (like compilePattern's) takes any value.
const typeOf = (event: unknown): string => {
  const type = typeof event === "object" && event !== null ? (event as { type?: unknown }).type : undefined;
  return typeof type === "string" ? type : "";
};
