import { randomUUIDv7 } from "bun";

/**
 * EventEnvelope is a CloudEvents 1.0 structured-mode event plus our extensions:
 * `correlationid`, `causationid`, `actorid`, and `sequence` (the global position) on read.
 */
export interface EventEnvelope<T = unknown, Type extends string = string> {
  specversion: "1.0";
  id: string;
  source: string;
  type: Type;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data: T;
  correlationid: string;
  causationid?: string;
  actorid?: string;
  sequence?: string;
}

/** EventContext carries who and what caused the events being appended. */
export interface EventContext {
  correlationId: string;
  causationId?: string;
  actorId?: string;
}

/** newEventId returns a time-ordered UUID v7. */
export const newEventId = (): string => randomUUIDv7();
