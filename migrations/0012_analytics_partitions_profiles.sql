CREATE TABLE "analytics"."clickstream_ids" (
	"event_id" uuid PRIMARY KEY NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."customer_histories" (
	"customer_id" uuid PRIMARY KEY NOT NULL,
	"order_count" integer NOT NULL,
	"lifetime_cents" bigint NOT NULL
);
--> statement-breakpoint
DROP INDEX "analytics"."clickstream_event_time_idx";--> statement-breakpoint
DROP INDEX "analytics"."sessions_key_end_idx";--> statement-breakpoint
CREATE INDEX "sessions_key_idx" ON "analytics"."sessions" USING btree ("user_id","session_id");--> statement-breakpoint
ALTER TABLE "analytics"."clickstream" DROP CONSTRAINT "clickstream_pkey";--> statement-breakpoint
-- Hand-written below (drizzle-kit cannot express partitioning, functions or backfills).
--
-- 1. analytics.clickstream becomes range-partitioned by day of received_at (UTC). Partitions are
--    made ahead by analytics.create_clickstream_partitions (the module's background task runs it
--    every hour for yesterday to 7 days ahead; ingestion runs it for its own day when an insert
--    finds no partition), and dropped by analytics.drop_clickstream_partitions (retention), which
--    deletes the partition's ids from clickstream_ids first. The rows stored so far move into the
--    new table and their ids into clickstream_ids.
ALTER TABLE "analytics"."clickstream" RENAME TO "clickstream_unpartitioned";--> statement-breakpoint
ALTER INDEX "analytics"."clickstream_batch_idx" RENAME TO "clickstream_unpartitioned_batch_idx";--> statement-breakpoint
CREATE TABLE "analytics"."clickstream" (LIKE "analytics"."clickstream_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("received_at");--> statement-breakpoint
CREATE INDEX "clickstream_batch_idx" ON "analytics"."clickstream" USING btree ("batch_id");--> statement-breakpoint
CREATE FUNCTION "analytics"."create_clickstream_partitions"(first_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  d date;
  part text;
  made integer := 0;
BEGIN
  FOR i IN 0 .. days - 1 LOOP
    d := first_day + i;
    part := 'clickstream_' || to_char(d, 'YYYYMMDD');
    IF to_regclass(format('analytics.%I', part)) IS NULL THEN
      -- Concurrent callers (two processes, or ingestion and the background task) take turns.
      PERFORM pg_advisory_xact_lock(hashtext('analytics.clickstream partitions'));
      IF to_regclass(format('analytics.%I', part)) IS NULL THEN
        EXECUTE format('CREATE TABLE analytics.%I PARTITION OF analytics.clickstream FOR VALUES FROM (%L) TO (%L)',
          part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
        made := made + 1;
      END IF;
    END IF;
  END LOOP;
  RETURN made;
END
$$;--> statement-breakpoint
CREATE FUNCTION "analytics"."drop_clickstream_partitions"(before date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  part record;
  dropped integer := 0;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'analytics.clickstream'::regclass AND c.relname ~ '^clickstream_[0-9]{8}$'
      AND to_date(substr(c.relname, 13), 'YYYYMMDD') < before
    ORDER BY c.relname
  LOOP
    EXECUTE format('DELETE FROM analytics.clickstream_ids i USING analytics.%I p WHERE i.event_id = p.event_id', part.relname);
    EXECUTE format('DROP TABLE analytics.%I', part.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END
$$;--> statement-breakpoint
SELECT "analytics"."create_clickstream_partitions"(
  least(current_date - 1, coalesce((SELECT min(received_at AT TIME ZONE 'UTC')::date FROM "analytics"."clickstream_unpartitioned"), current_date - 1)),
  greatest(current_date + 8, (SELECT max(received_at AT TIME ZONE 'UTC')::date + 1 FROM "analytics"."clickstream_unpartitioned"))
    - least(current_date - 1, coalesce((SELECT min(received_at AT TIME ZONE 'UTC')::date FROM "analytics"."clickstream_unpartitioned"), current_date - 1)));--> statement-breakpoint
INSERT INTO "analytics"."clickstream" SELECT * FROM "analytics"."clickstream_unpartitioned";--> statement-breakpoint
INSERT INTO "analytics"."clickstream_ids" SELECT "event_id" FROM "analytics"."clickstream_unpartitioned";--> statement-breakpoint
DROP TABLE "analytics"."clickstream_unpartitioned";--> statement-breakpoint
-- 2. The aggregate tables the consumer updates on every delivery leave a third of each page free,
--    so that updates that change no indexed column (counters, a session's end) are HOT.
ALTER TABLE "analytics"."sessions" SET (fillfactor = 70);--> statement-breakpoint
ALTER TABLE "analytics"."revenue_windows" SET (fillfactor = 70);--> statement-breakpoint
ALTER TABLE "analytics"."risk_windows" SET (fillfactor = 70);--> statement-breakpoint
ALTER TABLE "analytics"."velocity_windows" SET (fillfactor = 70);--> statement-breakpoint
-- 3. orders.customer_histories starts from the orders already in the read model.
INSERT INTO "orders"."customer_histories" ("customer_id", "order_count", "lifetime_cents")
SELECT "customer_id", count(*), sum(("state"->>'totalCents')::bigint) FROM "orders"."order_views" WHERE "status" <> 'CANCELLED' GROUP BY "customer_id";
--> statement-breakpoint
-- 4. The sessions now have a consumer of their own (analytics.sessions), split from
--    analytics.aggregate: it starts where analytics.aggregate is, which has applied everything
--    before that to the sessions already.
INSERT INTO "outbox"."subscriptions" ("name", "partition", "partitions", "last_transaction_id", "last_position", "status", "processed_count", "start_snapshot")
SELECT 'analytics.sessions', "partition", "partitions", "last_transaction_id", "last_position", "status", "processed_count", "start_snapshot"
FROM "outbox"."subscriptions" WHERE "name" = 'analytics.aggregate'
ON CONFLICT DO NOTHING;
