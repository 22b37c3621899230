DROP INDEX "outbox"."events_stream_version_key";--> statement-breakpoint
DROP INDEX "outbox"."events_causation_idx";--> statement-breakpoint
CREATE UNIQUE INDEX "events_stream_version_key" ON "outbox"."events" USING btree ("stream_id","stream_version") WHERE "outbox"."events"."stream_id" is not null;--> statement-breakpoint
CREATE INDEX "events_causation_idx" ON "outbox"."events" USING btree ("causation_id") WHERE "outbox"."events"."causation_id" is not null;