import { z } from "zod";

/** EventDefinition declares one event type once: its name, publishing module and data schema. */
export interface EventDefinition<T extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly source: string;
  readonly schema: T;
  readonly description: string;
}

/** EventData is the data type of an event definition. */
export type EventData<D> = D extends EventDefinition<infer S> ? z.infer<S> : never;

const TYPE_NAME = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

/**
 * defineEvent declares an event type for a module's `events.ts`.
 *
 * @example export const UserRegistered = defineEvent("users", "user.registered", "A user account was created", z.object({ userId: z.uuid() }));
 */
export function defineEvent<T extends z.ZodType>(source: string, type: string, description: string, schema: T): EventDefinition<T> {
  if (!TYPE_NAME.test(type)) throw new Error(`event type "${type}" must look like <aggregate>.<past-tense-verb>`);
  return Object.freeze({ type, source, schema, description });
}

/** EventRegistry holds every declared type; appending anything else is a programming error. */
export class EventRegistry {
  readonly #defs = new Map<string, EventDefinition>();

  register(...defs: EventDefinition[]): this {
    for (const def of defs) {
      const existing = this.#defs.get(def.type);
      if (existing && existing !== def) throw new Error(`event type "${def.type}" is declared twice (${existing.source}, ${def.source})`);
      this.#defs.set(def.type, def);
    }
    return this;
  }

  get(type: string): EventDefinition | undefined {
    return this.#defs.get(type);
  }

  all(): EventDefinition[] {
    return [...this.#defs.values()].sort((a, b) => a.type.localeCompare(b.type));
  }

  /** parse validates `data` for `type` and returns the parsed (normalised) data. */
  parse(type: string, data: unknown): unknown {
    const def = this.#defs.get(type);
    if (!def) throw new UnknownEventTypeError(type);
    const res = def.schema.safeParse(data);
    if (!res.success) throw new InvalidEventDataError(type, z.prettifyError(res.error));
    return res.data;
  }

  /** jsonSchema renders the JSON Schema of one type (draft 2020-12), generated from zod. */
  jsonSchema(type: string): Record<string, unknown> | undefined {
    const def = this.#defs.get(type);
    if (!def) return undefined;
    return { $id: `urn:event:${def.type}`, title: def.type, description: def.description, ...z.toJSONSchema(def.schema, { io: "input" }) };
  }
}

/** UnknownEventTypeError: appending a type nobody declared. A bug, not bad input. */
export class UnknownEventTypeError extends Error {
  constructor(readonly type: string) {
    super(`event type "${type}" is not declared in any module's events.ts`);
    this.name = "UnknownEventTypeError";
  }
}

/** InvalidEventDataError: data that does not satisfy the declared schema. A bug, not bad input. */
export class InvalidEventDataError extends Error {
  constructor(readonly type: string, detail: string) {
    super(`invalid data for event "${type}": ${detail}`);
    this.name = "InvalidEventDataError";
  }
}
