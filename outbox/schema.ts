import { sql } from "drizzle-orm";
import { bigint, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { xid8 } from "../src/db/types.ts";

/** The platform's schema: the event log, subscriptions, dead letters and HTTP idempotency. */
export const outboxSchema = pgSchema("outbox");

/**
 * events is the outbox, the event store and the archive at once. Readers order by
 * (transaction_id, position) and read only below the oldest running transaction, so an event
 * that commits late is never skipped.
 */
export const events = outboxSchema.table(
  "events",
  {
    position: bigint("position", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    transactionId: xid8("transaction_id").notNull().default(sql`pg_current_xact_id()`),
    id: uuid("id").notNull(),
    source: text("source").notNull(),
    type: text("type").notNull(),
    subject: text("subject").notNull(),
    time: timestamp("time", { withTimezone: true, mode: "string" }).notNull(),
    data: jsonb("data").notNull(),
    correlationId: text("correlation_id").notNull(),
    causationId: uuid("causation_id"),
    actorId: text("actor_id"),
    streamId: text("stream_id"),
    streamVersion: integer("stream_version"),
  },
  (t) => [
    uniqueIndex("events_id_key").on(t.id),
    index("events_tx_position_idx").on(t.transactionId, t.position),
    index("events_type_tx_position_idx").on(t.type, t.transactionId, t.position),
    // Most events belong to no stream and have no cause: partial indexes skip them on insert.
    uniqueIndex("events_stream_version_key").on(t.streamId, t.streamVersion).where(sql`${t.streamId} is not null`),
    index("events_correlation_idx").on(t.correlationId),
    index("events_causation_idx").on(t.causationId).where(sql`${t.causationId} is not null`),
    index("events_time_idx").on(t.time),
  ],
);

/** subscriptions holds one checkpoint and lease per subscription partition. */
export const subscriptions = outboxSchema.table(
  "subscriptions",
  {
    name: text("name").notNull(),
    partition: integer("partition").notNull(),
    partitions: integer("partitions").notNull(),
    lastTransactionId: xid8("last_transaction_id").notNull().default(sql`'0'::xid8`),
    lastPosition: bigint("last_position", { mode: "number" }).notNull().default(0),
    status: text("status", { enum: ["active", "paused"] })
      .notNull()
      .default("active"),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true, mode: "string" }),
    processedCount: bigint("processed_count", { mode: "number" }).notNull().default(0),
    // For a subscription that started "now": the snapshot taken then. Events its transactions
    // show as committed came before the start and are skipped (see worker/filter.ts, StartSnapshot).
    startSnapshot: text("start_snapshot"),
    failingPosition: bigint("failing_position", { mode: "number" }),
    failingAttempts: integer("failing_attempts").notNull().default(0),
    firstFailedAt: timestamp("first_failed_at", { withTimezone: true, mode: "string" }),
    lastError: text("last_error"),
    lastErrorAt: timestamp("last_error_at", { withTimezone: true, mode: "string" }),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.name, t.partition] })],
);

/**
 * subscription_members lists the processes running each subscription, each with a heartbeat;
 * partitions are shared out among the live ones (see outbox/membership.ts).
 */
export const subscriptionMembers = outboxSchema.table(
  "subscription_members",
  {
    subscription: text("subscription").notNull(),
    processId: text("process_id").notNull(),
    joinedAt: timestamp("joined_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "string" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.subscription, t.processId] })],
);

/** dead_letters keeps events a subscription gave up on, until redriven or discarded. */
export const deadLetters = outboxSchema.table(
  "dead_letters",
  {
    id: uuid("id").primaryKey(),
    subscription: text("subscription").notNull(),
    partition: integer("partition").notNull(),
    eventPosition: bigint("event_position", { mode: "number" }).notNull(),
    eventId: uuid("event_id").notNull(),
    eventType: text("event_type").notNull(),
    error: text("error").notNull(),
    attempts: integer("attempts").notNull(),
    status: text("status", { enum: ["dead", "redriving", "redriven"] })
      .notNull()
      .default("dead"),
    firstFailedAt: timestamp("first_failed_at", { withTimezone: true, mode: "string" }).notNull(),
    lastFailedAt: timestamp("last_failed_at", { withTimezone: true, mode: "string" }).notNull(),
    redrivenAt: timestamp("redriven_at", { withTimezone: true, mode: "string" }),
  },
  (t) => [
    uniqueIndex("dead_letters_subscription_event_key").on(t.subscription, t.eventPosition),
    index("dead_letters_status_idx").on(t.status, t.subscription),
  ],
);

/** idempotency_keys stores the first response to a creating POST, per user and key. */
export const idempotencyKeys = outboxSchema.table(
  "idempotency_keys",
  {
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    status: integer("status"),
    headers: jsonb("headers").$type<Record<string, string>>(),
    body: text("body"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "string" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_keys_expires_idx").on(t.expiresAt)],
);

/**
 * snapshots keeps the latest snapshot of each event-sourced stream: the state after `version`,
 * as the decider named in `decider` folds it with evolve version `evolve_version`. A reader with
 * another name or evolve version ignores the row and replays the stream (then overwrites it).
 * Written in the same transaction as the events, so a snapshot never runs ahead of its stream.
 */
export const snapshots = outboxSchema.table("snapshots", {
  streamId: text("stream_id").primaryKey(),
  version: integer("version").notNull(),
  decider: text("decider").notNull(),
  evolveVersion: integer("evolve_version").notNull(),
  state: jsonb("state").notNull(),
  takenAt: timestamp("taken_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
});
