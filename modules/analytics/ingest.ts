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
import { deriveFeatures, type ProductCatalog } from "./enrich.ts";
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

/**
 * validateEvents checks each raw event; `now` bounds clientTime. Returns the valid events with
 * their index in the request, and the refused ones with their errors.
 */
export function validateEvents(raw: readonly unknown[], caller: Caller, now: Date): { valid: { index: number; event: ClickEvent }[]; rejected: Rejected[] } {
  const valid: { index: number; event: ClickEvent }[] = [];
  const rejected: Rejected[] = [];
  raw.forEach((item, index) => {
    const parsed = ClickEventSchema.safeParse(item);
    if (!parsed.success) {
      rejected.push({ index, errors: issuesOf(parsed.error) });
      return;
    }
    const e = parsed.data;
    const errors: FieldError[] = [];
    if (e.clientTime !== undefined && Date.parse(e.clientTime) > now.getTime() + MAX_CLOCK_SKEW_MS)
      errors.push({ path: "clientTime", message: "is more than 5 minutes in the future", code: "ANALYTICS.CLIENT_TIME_IN_FUTURE" });
    if (caller.kind === "user" && e.userId !== caller.userId)
      errors.push({ path: "userId", message: "a signed-in caller may only send its own userId", code: "ANALYTICS.NOT_OWN_USER" });
    if (errors.length) rejected.push({ index, errors });
    else valid.push({ index, event: e });
  });
  return { valid, rejected };
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
  const c = {
    eventId: [] as string[],
    batchIndex: [] as number[],
    userId: [] as string[],
    sessionId: [] as string[],
    eventType: [] as string[],
    productId: [] as (string | null)[],
    category: [] as (string | null)[],
    priceCents: [] as (number | null)[],
    quantity: [] as (number | null)[],
    deviceType: [] as (string | null)[],
    country: [] as (string | null)[],
    region: [] as (string | null)[],
    query: [] as (string | null)[],
    eventTime: [] as string[],
    clientTime: [] as (string | null)[],
    features: [] as string[],
  };
  const seen = new Set<string>();
  events.forEach((e, i) => {
    const eventId = e.eventId ?? randomUUIDv7();
    if (e.eventId !== undefined) {
      if (seen.has(eventId)) return;
      seen.add(eventId);
    }
    const product = e.productId ? products.get(e.productId) : undefined;
    const clientTime = e.clientTime === undefined ? null : new Date(e.clientTime);
    const time = clientTime ?? receivedAt;
    const eventPrice = e.price === undefined ? undefined : Math.round(e.price * 100);
    const priceCents = eventPrice ?? product?.priceCents;
    const features = deriveFeatures(
      time,
      { priceCents, quantity: e.quantity, deviceType: e.deviceType, priceFromCatalog: eventPrice === undefined && priceCents !== undefined },
      profiles.get(e.userId) ?? NEW_CUSTOMER,
      product,
    );
    const timeIso = clientTime ? clientTime.toISOString() : received;
    c.eventId.push(eventId);
    c.batchIndex.push(i);
    c.userId.push(e.userId);
    c.sessionId.push(e.sessionId);
    c.eventType.push(e.eventType);
    c.productId.push(e.productId ?? null);
    c.category.push(e.category ?? product?.category ?? null);
    c.priceCents.push(priceCents ?? null);
    c.quantity.push(e.quantity ?? null);
    c.deviceType.push(e.deviceType ?? null);
    c.country.push(e.location?.country ?? null);
    c.region.push(e.location?.region ?? null);
    c.query.push(e.query ?? null);
    c.eventTime.push(timeIso);
    c.clientTime.push(clientTime ? timeIso : null);
    c.features.push(JSON.stringify(features));
  });
  // Each column travels as one array parameter (sql.param), times and JSON as text cast by Postgres.
  const p = sql.param;
  const insert = () =>
    deps.db.transaction(async (tx) => {
      const [row] = (await tx.execute(sql`
        with fresh as (
          insert into analytics.clickstream_ids (event_id) select unnest(${p(c.eventId)}::uuid[]) on conflict do nothing returning event_id
        ), stored as (
          insert into analytics.clickstream (event_id, batch_id, batch_index, user_id, session_id, event_type, product_id, category, price_cents,
            quantity, device_type, country, region, query, event_time, client_time, received_at, version, source, features)
          select u.event_id, ${batchId}::uuid, u.batch_index, u.user_id, u.session_id, u.event_type, u.product_id, u.category, u.price_cents,
            u.quantity, u.device_type, u.country, u.region, u.query, u.event_time::timestamptz, u.client_time::timestamptz,
            ${received}::timestamptz, ${EVENT_VERSION}, ${EVENT_SOURCE}, u.features::jsonb
          from unnest(${p(c.eventId)}::uuid[], ${p(c.batchIndex)}::int[], ${p(c.userId)}::text[], ${p(c.sessionId)}::text[],
                      ${p(c.eventType)}::text[], ${p(c.productId)}::text[], ${p(c.category)}::text[], ${p(c.priceCents)}::bigint[],
                      ${p(c.quantity)}::int[], ${p(c.deviceType)}::text[], ${p(c.country)}::text[], ${p(c.region)}::text[],
                      ${p(c.query)}::text[], ${p(c.eventTime)}::text[], ${p(c.clientTime)}::text[], ${p(c.features)}::text[])
            as u(event_id, batch_index, user_id, session_id, event_type, product_id, category, price_cents, quantity, device_type,
                 country, region, query, event_time, client_time, features)
          where u.event_id in (select event_id from fresh)
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
