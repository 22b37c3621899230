import type { z } from "zod";
import type { EventEnvelope } from "../../outbox/envelope.ts";

/**
 * Visibility says who may see an event type. `public` events are the module's published
 * contract: other modules subscribe to them and the relays carry them to EventBridge and
 * Kinesis, so changing one is an API change. `internal` events (an event-sourced aggregate's
 * own stream events, say) stay in the log for the module's own subscriptions.
 */
export type Visibility = "public" | "internal";

/** EventMeta is what an event needs besides its data when it is appended. */
export interface EventMeta {
  /** The aggregate the event is about; also the partition and Kinesis key. */
  readonly subject: string;
  /** A UUID v7 is made when absent; give one to make an append idempotent on retry. */
  readonly id?: string | undefined;
  /** ISO-8601; the append's time when absent. */
  readonly time?: string | undefined;
  /**
   * The event this one reacts to: its id becomes the causation, and its correlation and actor
   * carry over. Defaults to the event being handled, which is right everywhere but in a
   * `handleBatch`, where there is no single one.
   */
  readonly causedBy?: Pick<EventEnvelope, "id" | "correlationid" | "actorid"> | undefined;
}

/** EventDefinition declares one event type once: its name, publishing module, visibility and data schema. */
export interface EventDefinition<Type extends string = string, S extends z.ZodType = z.ZodType, V extends Visibility = Visibility> {
  readonly type: Type;
  readonly source: string;
  readonly visibility: V;
  readonly description: string;
  readonly schema: S;
  /**
   * with makes an event of this type to hand to `append`; `data` is checked by the compiler
   * against the schema's input type (and by the schema again at append).
   *
   * @example await outbox.append(tx, [UserRegistered.with({ userId, username, displayName, email }, { subject: userId })]);
   */
  with(data: z.input<S>, meta: EventMeta): NewEvent<EventDefinition<Type, S, V>>;
  /** is narrows an envelope to this type, e.g. one read back with `readStream`. */
  is(event: EventEnvelope): event is EventEnvelope<z.output<S>, Type>;
}

/** AnyEventDefinition is any event definition, whatever its type name and schema. */
export type AnyEventDefinition = EventDefinition<string, z.ZodType, Visibility>;

/** EventData is the data an envelope of definition `D` carries (the schema's output). */
export type EventData<D extends AnyEventDefinition> = z.output<D["schema"]>;

/** EventInput is the data `D.with` accepts (the schema's input; defaults may be left out). */
export type EventInput<D extends AnyEventDefinition> = z.input<D["schema"]>;

/**
 * EnvelopeOf is the envelope of one of the definitions in the union `D`: a discriminated union
 * on `type`, so `switch (event.type)` narrows `event.data`.
 */
export type EnvelopeOf<D extends AnyEventDefinition> = D extends AnyEventDefinition ? EventEnvelope<EventData<D>, D["type"]> : never;

// Only a definition's `with` makes a NewEvent (a type-only brand, so an object literal cannot
// pass for one): the data is then checked against the schema the definition names.
declare const madeByDefinition: unique symbol;

/** NewEvent is an event ready to append, made by a definition's `with`. */
export interface NewEvent<D extends AnyEventDefinition = AnyEventDefinition> extends EventMeta {
  readonly [madeByDefinition]: true;
  readonly definition: D;
  readonly type: D["type"];
  readonly data: EventInput<D>;
}

/** EventDeclaration is what `defineEvent` takes. */
export interface EventDeclaration<Type extends string, S extends z.ZodType, V extends Visibility> {
  /** The publishing module's name. */
  source: string;
  /** `<aggregate>.<past-tense verb>`, e.g. `order.created`. */
  type: Type;
  /** Required, so that publishing to the outside world is always a decision. */
  visibility: V;
  description: string;
  schema: S;
}

// Underscores are allowed for multi-word verbs (`inventory.reservation_failed`), as CloudEvents and EventBridge allow.
const TYPE_NAME = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;

/**
 * defineEvent declares an event type for a module's `events.ts`. The type name stays a string
 * literal in the definition's type, so appends through `with` and subscriptions naming it in
 * `on` are checked by the compiler.
 *
 * @example
 * export const UserRegistered = defineEvent({
 *   source: "users",
 *   type: "user.registered",
 *   visibility: "public",
 *   description: "A user account was created.",
 *   schema: z.object({ userId: z.uuid() }),
 * });
 */
export function defineEvent<Type extends `${string}.${string}`, S extends z.ZodType, V extends Visibility>(
  decl: EventDeclaration<Type, S, V>,
): EventDefinition<Type, S, V> {
  const { source, type, visibility, description, schema } = decl;
  if (!TYPE_NAME.test(type)) throw new Error(`event type "${type}" must look like <aggregate>.<past-tense-verb>`);
  // Checked at run time too: a JavaScript caller or a cast could leave it out, and a missing
  // visibility must not quietly publish an event to the outside world.
  if (visibility !== "public" && visibility !== "internal") throw new Error(`event type "${type}" needs visibility "public" or "internal"`);
  const def: EventDefinition<Type, S, V> = Object.freeze({
    type,
    source,
    visibility,
    description,
    schema,
    with: (data: z.input<S>, meta: EventMeta) => ({ ...meta, definition: def, type, data }) as NewEvent<EventDefinition<Type, S, V>>,
    is: (event: EventEnvelope): event is EventEnvelope<z.output<S>, Type> => event.type === type,
  });
  return def;
}
