import type { OpenAPIHono } from "@hono/zod-openapi";
import type { SubscriptionDefinition } from "../outbox/types.ts";
import type { AnyEventDefinition } from "./events/definition.ts";
import type { AppEnv } from "./http/env.ts";

/**
 * BackgroundTask is a loop a module runs beside its subscriptions (a timer that fires durable
 * deadlines, say): started where the worker role is on, stopped before the pools close.
 */
export interface BackgroundTask {
  readonly name: string;
  start(): void;
  /** stop ends the loop and resolves once its current round has finished. */
  stop(): Promise<void>;
}

/** ModuleDefinition is a module's whole face to the platform. */
export interface ModuleDefinition<Api = unknown> {
  /** Lower-case module name, e.g. `orders`; also its Postgres schema's base name. */
  readonly name: string;
  /** Every event type the module appends (from its events.ts), public and internal. */
  readonly events: readonly AnyEventDefinition[];
  /** Adds the module's routes to the `/api/v1` router. */
  readonly routes?: (api: OpenAPIHono<AppEnv>) => void;
  /** Durable reactions to events; run only where the worker role is on. */
  readonly subscriptions?: readonly SubscriptionDefinition[];
  /** The synchronous, read-only API other modules may call. */
  readonly api: Api;
  /** Loops run where the worker role is on, like the subscriptions (they must be safe to run in several processes). */
  readonly background?: readonly BackgroundTask[];
  /** Runs once at start-up after migrations (e.g. seeding). */
  readonly start?: () => Promise<void>;
  /** Runs at shutdown, before requests are drained: ends what would hold a drain (open streams). */
  readonly stop?: () => Promise<void>;
}

const NAME = /^[a-z][a-z0-9-]*$/;

/**
 * defineModule checks a module definition and returns it unchanged.
 *
 * @example export const createUsersModule = (deps: UsersDeps) => defineModule({ name: "users", events: [UserRegistered], api, routes })
 */
export function defineModule<Api>(def: ModuleDefinition<Api>): ModuleDefinition<Api> {
  if (!NAME.test(def.name)) throw new Error(`module name "${def.name}" must be lower-case`);
  for (const e of def.events) {
    if (e.source !== def.name) throw new Error(`module ${def.name} declares event ${e.type} with source ${e.source}`);
  }
  for (const s of def.subscriptions ?? []) {
    if (!s.name.startsWith(`${def.name}.`)) throw new Error(`subscription ${s.name} must be named ${def.name}.<action>`);
    // Another module's internal events are not its contract: they may change without notice.
    for (const e of s.on ?? []) {
      if (e.visibility === "internal" && e.source !== def.name)
        throw new Error(`subscription ${s.name} consumes ${e.type}, an internal event of module ${e.source}`);
    }
  }
  return def;
}
