import { randomUUIDv7 } from "bun";

/**
 * EventEnvelope is a CloudEvents 1.0 structured-mode event plus our extensions:
 * `correlationid`, `causationid`, `actorid`, and `sequence` (the global position) on read.
 */
export interface EventEnvelope<T = unknown> {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data: T;
  correlationid: string;
  causationid?: string;
  actorid?: string;
  sequence?: string;
}

/** NewEvent is what a use case hands to `append`: the rest of the envelope is filled in. */
export interface NewEvent<T = unknown> {
  type: string;
  subject: string;
  data: T;
  /** Overrides the source registered for the type; rarely needed. */
  source?: string;
  id?: string;
  time?: string;
  /**
   * The event this one reacts to: its id becomes the causation, and its correlation and actor
   * carry over. Defaults to the event being handled, which is right everywhere but in a
   * `handleBatch`, where there is no single one.
   */
  causedBy?: Pick<EventEnvelope, "id" | "correlationid" | "actorid">;
}

/** EventContext carries who and what caused the events being appended. */
export interface EventContext {
  correlationId: string;
  causationId?: string;
  actorId?: string;
}

/** newEventId returns a time-ordered UUID v7. */
export const newEventId = (): string => randomUUIDv7();
