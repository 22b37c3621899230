/**
 * Ingestion: validate each event on its own (a bad event never costs the good ones), enrich the
 * accepted ones, and store them with one statement per request (`unnest` inserts of the ids into
 * the dedupe table and of the rows whose id was new into the partitioned clickstream); in the
 * same transaction, one compact internal event names the batch for the aggregating consumer.
 */
import { randomUUIDv7 } from "bun";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { type Appender, type Db, type FieldError, textProblem } from "../../src/platform.ts";
import { deriveFeatures, type Features, type ProductCatalog } from "./enrich.ts";
import { AnalyticsEventsIngested } from "./events.ts";
import { createPartitions, isMissingPartition } from "./partitions.ts";
import { type CustomerProfiles, NEW_CUSTOMER } from "./profiles.ts";

/** MAX_BATCH is the most events one request may carry. */
export const MAX_BATCH = 500;
/** MAX_CLOCK_SKEW_MS: a clientTime may be at most this far ahead of the server's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** EVENT_VERSION and EVENT_SOURCE stamp every stored event. */
export const EVENT_VERSION = "1.0";
export const EVENT_SOURCE = "analytics-api";

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((s) => textProblem(s) === null, { message: "contains a control or bidirectional character" });

/** ClickEventSchema is one clickstream event as a client sends it. */
export const ClickEventSchema = z.object({
  eventId: z.uuid().optional(),
  userId: text(128),
  sessionId: text(128),
  eventType: z.enum(["page_view", "add_to_cart", "purchase", "search"]),
  productId: text(128).optional(),
  category: text(100).optional(),
  price: z.number().min(0).max(10_000_000).optional(),
  quantity: z.number().int().min(1).max(1000).optional(),
  deviceType: text(50).optional(),
  location: z.object({ country: text(64), region: text(100) }).optional(),
  query: text(500).optional(),
  clientTime: z.iso.datetime({ offset: true }).optional(),
});

/** ClickEvent is a validated clickstream event. */
export type ClickEvent = z.output<typeof ClickEventSchema>;

/** Rejected is one refused event of a request: its index and why. */
export interface Rejected {
  index: number;
  errors: FieldError[];
}

/** IngestResult is what a request's events came to. */
export interface IngestResult {
  /** Valid events (duplicates of stored ones included: they are accepted, and counted once). */
  accepted: number;
  /** Accepted events that were already stored (same eventId). */
  duplicates: number;
  rejected: Rejected[];
}

/** Caller says who sends: a signed-in user (may only send their own userId) or the ingestion key holder. */
export type Caller = { kind: "user"; userId: string } | { kind: "key" };

const issuesOf = (err: z.ZodError): FieldError[] => err.issues.map((i) => ({ path: i.path.join(".") || "(event)", message: i.message, code: i.code }));

const ClickEventBatchSchema = z.array(ClickEventSchema);

/**
 * validateEvents checks each raw event; `now` bounds clientTime. Returns the valid events with
 * their index in the request, and the refused ones with their errors.
 *
 * The whole batch is parsed with one array schema first: zod 4 parses an array of 500 objects
 * about four times faster in one call than in 500 (measured: 1.4 against 5.7 µs an event). Only
 * when that fails is each event parsed alone, to keep the good ones and say what is wrong with
 * the others.
 */
export function validateEvents(raw: readonly unknown[], caller: Caller, now: Date): { valid: { index: number; event: ClickEvent }[]; rejected: Rejected[] } {
  const valid: { index: number; event: ClickEvent }[] = [];
  const rejected: Rejected[] = [];
  const latest = now.getTime() + MAX_CLOCK_SKEW_MS;
  const check = (e: ClickEvent, index: number) => {
    const futureTime = e.clientTime !== undefined && Date.parse(e.clientTime) > latest;
    const notOwn = caller.kind === "user" && e.userId !== caller.userId;
    if (!futureTime && !notOwn) {
      valid.push({ index, event: e });
      return;
    }
    const errors: FieldError[] = [];
    if (futureTime) errors.push({ path: "clientTime", message: "is more than 5 minutes in the future", code: "ANALYTICS.CLIENT_TIME_IN_FUTURE" });
    if (notOwn) errors.push({ path: "userId", message: "a signed-in caller may only send its own userId", code: "ANALYTICS.NOT_OWN_USER" });
    rejected.push({ index, errors });
  };
  const all = ClickEventBatchSchema.safeParse(raw);
  if (all.success) all.data.forEach(check);
  else
    raw.forEach((item, index) => {
      const parsed = ClickEventSchema.safeParse(item);
      if (parsed.success) check(parsed.data, index);
      else rejected.push({ index, errors: issuesOf(parsed.error) });
    });
  return { valid, rejected };
}

/** Row is one clickstream row as it travels to json_to_recordset (an absent field is null there). */
interface Row {
  event_id: string;
  batch_index: number;
  user_id: string;
  session_id: string;
  event_type: string;
  product_id: string | undefined;
  category: string | undefined;
  price_cents: number | undefined;
  quantity: number | undefined;
  device_type: string | undefined;
  country: string | undefined;
  region: string | undefined;
  query: string | undefined;
  client_time: string | undefined;
  features: Features;
}

/** IngestDeps are what storing events needs. */
export interface IngestDeps {
  db: Db;
  outbox: Appender;
  catalog: ProductCatalog;
  profiles: CustomerProfiles;
}

/**
 * storeEvents enriches and stores valid events in one transaction: one statement inserts their
 * ids into `clickstream_ids`, skipping ids already there, and the rows whose id was new into the
 * clickstream (partitioned by `receivedAt`'s day); then, when any row was new, one
 * `analytics.events_ingested` names the batch. An id repeated within the request is stored once
 * (the first). Returns how many rows were new.
 */
export async function storeEvents(deps: IngestDeps, events: readonly ClickEvent[], receivedAt: Date): Promise<number> {
  if (events.length === 0) return 0;
  const productIds: string[] = [];
  for (const e of events) if (e.productId) productIds.push(e.productId);
  const [products, profiles] = await Promise.all([deps.catalog.lookup(productIds), deps.profiles.lookup(events.map((e) => e.userId))]);
  const batchId = randomUUIDv7();
  const received = receivedAt.toISOString();
  // The rows travel as one JSON text parameter, read by json_to_recordset: one native
  // JSON.stringify instead of 16 array parameters escaped element by element (half the client CPU).
  const rows: Row[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const eventId = e.eventId ?? randomUUIDv7();
    if (e.eventId !== undefined) {
      // By value: the same UUID in upper and lower case is one id to Postgres.
      const key = eventId.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
    }
    const product = e.productId ? products.get(e.productId) : undefined;
    const clientTime = e.clientTime === undefined ? null : new Date(e.clientTime);
    const eventPrice = e.price === undefined ? undefined : Math.round(e.price * 100);
    const priceCents = eventPrice ?? product?.priceCents;
    rows.push({
      event_id: eventId,
      batch_index: i,
      user_id: e.userId,
      session_id: e.sessionId,
      event_type: e.eventType,
      product_id: e.productId,
      category: e.category ?? product?.category,
      price_cents: priceCents,
      quantity: e.quantity,
      device_type: e.deviceType,
      country: e.location?.country,
      region: e.location?.region,
      query: e.query,
      client_time: clientTime?.toISOString(),
      features: deriveFeatures(
        clientTime ?? receivedAt,
        { priceCents, quantity: e.quantity, deviceType: e.deviceType, priceFromCatalog: eventPrice === undefined && priceCents !== undefined },
        profiles.get(e.userId) ?? NEW_CUSTOMER,
        product,
      ),
    });
  }
  const doc = JSON.stringify(rows);
  const insert = () =>
    deps.db.transaction(async (tx) => {
      const [row] = (await tx.execute(sql`
        with u as materialized (
          select * from json_to_recordset(${doc}::text::json) as u(event_id uuid, batch_index int, user_id text, session_id text, event_type text,
            product_id text, category text, price_cents bigint, quantity int, device_type text, country text, region text, query text,
            client_time timestamptz, features jsonb)
        ), fresh as (
          insert into analytics.clickstream_ids (event_id) select event_id from u on conflict do nothing returning event_id
        ), stored as (
          insert into analytics.clickstream (event_id, batch_id, batch_index, user_id, session_id, event_type, product_id, category, price_cents,
            quantity, device_type, country, region, query, event_time, client_time, received_at, version, source, features)
          select u.event_id, ${batchId}::uuid, u.batch_index, u.user_id, u.session_id, u.event_type, u.product_id, u.category, u.price_cents,
            u.quantity, u.device_type, u.country, u.region, u.query, coalesce(u.client_time, ${received}::timestamptz), u.client_time,
            ${received}::timestamptz, ${EVENT_VERSION}, ${EVENT_SOURCE}, u.features
          from u where u.event_id in (select event_id from fresh)
          returning 1
        )
        select count(*)::int as n from stored`)) as unknown as { n: number }[];
      const count = row!.n;
      if (count > 0) await deps.outbox.append(tx, [AnalyticsEventsIngested.with({ batchId, count, receivedAt: received }, { subject: batchId })]);
      return count;
    });
  try {
    return await insert();
  } catch (err) {
    // No partition for this day yet (the maintenance task had not made it): make it, try once more.
    if (!isMissingPartition(err)) throw err;
    await createPartitions(deps.db, receivedAt, 1);
    return insert();
  }
}
