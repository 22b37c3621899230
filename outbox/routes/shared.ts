import { z } from "@hono/zod-openapi";
import type { Db } from "../../src/db/client.ts";
import type { EventRegistry } from "../../src/events/registry.ts";
import type { Outbox } from "../index.ts";

/** RoutesDeps are what the outbox's routes need. */
export interface RoutesDeps {
  db: Db;
  registry: EventRegistry;
  outbox: Outbox;
  subscriptionsByType: () => (type: string) => string[];
}

export const Envelope = z
  .object({
    specversion: z.literal("1.0"),
    id: z.string(),
    source: z.string(),
    type: z.string(),
    subject: z.string(),
    time: z.string(),
    datacontenttype: z.string(),
    data: z.unknown(),
    correlationid: z.string(),
    causationid: z.string().optional(),
    actorid: z.string().optional(),
    sequence: z.string().optional(),
  })
  .openapi("EventEnvelope");

export const json = <T extends z.ZodType>(schema: T, description = "OK") => ({ description, content: { "application/json": { schema } } });
export const body = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { "application/json": { schema } } } });
export const NameParam = z.object({ name: z.string().min(1).max(200) });
export const IdParam = z.object({ id: z.uuid() });

/** MAX_POSITION is the largest event position (a bigint column). */
export const MAX_POSITION = 9_223_372_036_854_775_807n;
/** Position is an event position given by a client, as a decimal string. */
export const Position = z
  .string()
  .regex(/^\d{1,19}$/, "a position is a non-negative integer")
  // zod runs refinements even after the regex failed, so only compare what is all digits.
  .refine((v) => !/^\d+$/.test(v) || BigInt(v) <= MAX_POSITION, "a position is at most 9223372036854775807");

/** digitsUpTo is a decimal string no greater than `max`, so a cast in SQL never overflows. */
export const digitsUpTo = (max: bigint) =>
  z
    .string()
    .regex(/^\d{1,20}$/)
    // zod runs refinements even after the regex failed: BigInt("1e3") would throw, a 500.
    .refine((v) => !/^\d+$/.test(v) || BigInt(v) <= max);
