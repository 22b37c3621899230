CREATE TABLE "analytics"."consumer_batches" (
	"consumer" text NOT NULL,
	"batch_id" uuid NOT NULL,
	"received_at" timestamp with time zone,
	CONSTRAINT "consumer_batches_consumer_batch_id_pk" PRIMARY KEY("consumer","batch_id")
);
--> statement-breakpoint
CREATE INDEX "consumer_batches_received_at_idx" ON "analytics"."consumer_batches" USING btree ("received_at");