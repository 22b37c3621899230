import { z } from "zod";
import type { AnyEventDefinition } from "./definition.ts";

/**
 * EventRegistry holds every declared type, of every module (also those another process hosts):
 * appending anything else is a programming error, and the relays learn from it which types are
 * public.
 */
export class EventRegistry {
  readonly #defs = new Map<string, AnyEventDefinition>();
  #publicTypes: readonly string[] | undefined;

  register(...defs: AnyEventDefinition[]): this {
    for (const def of defs) {
      const existing = this.#defs.get(def.type);
      if (existing && existing !== def) throw new Error(`event type "${def.type}" is declared twice (${existing.source}, ${def.source})`);
      this.#defs.set(def.type, def);
    }
    this.#publicTypes = undefined;
    return this;
  }

  get(type: string): AnyEventDefinition | undefined {
    return this.#defs.get(type);
  }

  all(): AnyEventDefinition[] {
    return [...this.#defs.values()].sort((a, b) => a.type.localeCompare(b.type));
  }

  /** publicTypes lists the public types, sorted; the same array until the next `register`. */
  publicTypes(): readonly string[] {
    this.#publicTypes ??= Object.freeze(
      this.all()
        .filter((d) => d.visibility === "public")
        .map((d) => d.type),
    );
    return this.#publicTypes;
  }

  /** isPublic tells whether `type` is declared and public. */
  isPublic(type: string): boolean {
    return this.#defs.get(type)?.visibility === "public";
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
  constructor(
    readonly type: string,
    detail: string,
  ) {
    super(`invalid data for event "${type}": ${detail}`);
    this.name = "InvalidEventDataError";
  }
}
