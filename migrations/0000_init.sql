CREATE SCHEMA "outbox";
--> statement-breakpoint
CREATE SCHEMA "users";
--> statement-breakpoint
CREATE TABLE "outbox"."dead_letters" (
	"id" uuid PRIMARY KEY NOT NULL,
	"subscription" text NOT NULL,
	"partition" integer NOT NULL,
	"event_position" bigint NOT NULL,
	"event_id" uuid NOT NULL,
	"event_type" text NOT NULL,
	"error" text NOT NULL,
	"attempts" integer NOT NULL,
	"status" text DEFAULT 'dead' NOT NULL,
	"first_failed_at" timestamp with time zone NOT NULL,
	"last_failed_at" timestamp with time zone NOT NULL,
	"redriven_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "outbox"."events" (
	"position" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "outbox"."events_position_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"transaction_id" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"id" uuid NOT NULL,
	"source" text NOT NULL,
	"type" text NOT NULL,
	"subject" text NOT NULL,
	"time" timestamp with time zone NOT NULL,
	"data" jsonb NOT NULL,
	"correlation_id" text NOT NULL,
	"causation_id" uuid,
	"actor_id" text,
	"stream_id" text,
	"stream_version" integer
);
--> statement-breakpoint
CREATE TABLE "outbox"."idempotency_keys" (
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"status" integer,
	"headers" jsonb,
	"body" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_scope_key_pk" PRIMARY KEY("scope","key")
);
--> statement-breakpoint
CREATE TABLE "outbox"."subscriptions" (
	"name" text NOT NULL,
	"partition" integer NOT NULL,
	"partitions" integer NOT NULL,
	"last_transaction_id" "xid8" DEFAULT '0'::xid8 NOT NULL,
	"last_position" bigint DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"processed_count" bigint DEFAULT 0 NOT NULL,
	"failing_position" bigint,
	"failing_attempts" integer DEFAULT 0 NOT NULL,
	"first_failed_at" timestamp with time zone,
	"last_error" text,
	"last_error_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subscriptions_name_partition_pk" PRIMARY KEY("name","partition")
);
--> statement-breakpoint
CREATE TABLE "users"."accounts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"email" text NOT NULL,
	"display_name" text NOT NULL,
	"password_hash" text NOT NULL,
	"role" text DEFAULT 'user' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_subscription_event_key" ON "outbox"."dead_letters" USING btree ("subscription","event_position");--> statement-breakpoint
CREATE INDEX "dead_letters_status_idx" ON "outbox"."dead_letters" USING btree ("status","subscription");--> statement-breakpoint
CREATE UNIQUE INDEX "events_id_key" ON "outbox"."events" USING btree ("id");--> statement-breakpoint
CREATE INDEX "events_tx_position_idx" ON "outbox"."events" USING btree ("transaction_id","position");--> statement-breakpoint
CREATE INDEX "events_type_tx_position_idx" ON "outbox"."events" USING btree ("type","transaction_id","position");--> statement-breakpoint
CREATE UNIQUE INDEX "events_stream_version_key" ON "outbox"."events" USING btree ("stream_id","stream_version");--> statement-breakpoint
CREATE INDEX "events_correlation_idx" ON "outbox"."events" USING btree ("correlation_id");--> statement-breakpoint
CREATE INDEX "events_causation_idx" ON "outbox"."events" USING btree ("causation_id");--> statement-breakpoint
CREATE INDEX "events_time_idx" ON "outbox"."events" USING btree ("time");--> statement-breakpoint
CREATE INDEX "idempotency_keys_expires_idx" ON "outbox"."idempotency_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_username_lower_key" ON "users"."accounts" USING btree (lower("username"));--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_email_lower_key" ON "users"."accounts" USING btree (lower("email"));