CREATE SCHEMA "analytics";
--> statement-breakpoint
CREATE TABLE "analytics"."clickstream" (
	"event_id" uuid PRIMARY KEY NOT NULL,
	"batch_id" uuid NOT NULL,
	"batch_index" smallint NOT NULL,
	"user_id" text NOT NULL,
	"session_id" text NOT NULL,
	"event_type" text NOT NULL,
	"product_id" text,
	"category" text,
	"price_cents" bigint,
	"quantity" integer,
	"device_type" text,
	"country" text,
	"region" text,
	"query" text,
	"event_time" timestamp with time zone NOT NULL,
	"client_time" timestamp with time zone,
	"received_at" timestamp with time zone NOT NULL,
	"version" text NOT NULL,
	"source" text NOT NULL,
	"features" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "analytics"."consumer_state" (
	"aggregate" text PRIMARY KEY NOT NULL,
	"watermark" timestamp with time zone,
	"late_events" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "consumer_state_late_nonnegative" CHECK ("analytics"."consumer_state"."late_events" >= 0)
);
--> statement-breakpoint
CREATE TABLE "analytics"."revenue_customers" (
	"window_start" timestamp with time zone NOT NULL,
	"category" text NOT NULL,
	"user_id" text NOT NULL,
	CONSTRAINT "revenue_customers_window_start_category_user_id_pk" PRIMARY KEY("window_start","category","user_id")
);
--> statement-breakpoint
CREATE TABLE "analytics"."revenue_windows" (
	"window_start" timestamp with time zone NOT NULL,
	"category" text NOT NULL,
	"order_count" integer NOT NULL,
	"revenue_cents" bigint NOT NULL,
	"unique_customers" integer NOT NULL,
	CONSTRAINT "revenue_windows_window_start_category_pk" PRIMARY KEY("window_start","category")
);
--> statement-breakpoint
CREATE TABLE "analytics"."risk_countries" (
	"user_id" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"country" text NOT NULL,
	CONSTRAINT "risk_countries_user_id_window_start_country_pk" PRIMARY KEY("user_id","window_start","country")
);
--> statement-breakpoint
CREATE TABLE "analytics"."risk_windows" (
	"user_id" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"purchase_count" integer NOT NULL,
	"total_cents" bigint NOT NULL,
	"country_count" integer NOT NULL,
	"level" text NOT NULL,
	"alerted_rank" smallint DEFAULT 0 NOT NULL,
	CONSTRAINT "risk_windows_user_id_window_start_pk" PRIMARY KEY("user_id","window_start")
);
--> statement-breakpoint
CREATE TABLE "analytics"."sessions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"session_id" text NOT NULL,
	"start_time" timestamp with time zone NOT NULL,
	"end_time" timestamp with time zone NOT NULL,
	"event_count" integer NOT NULL,
	"page_views" integer NOT NULL,
	"cart_additions" integer NOT NULL,
	"purchases" integer NOT NULL,
	"revenue_cents" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "analytics"."velocity_windows" (
	"product_id" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"units" integer NOT NULL,
	"sale_count" integer NOT NULL,
	"reported" text,
	CONSTRAINT "velocity_windows_product_id_window_start_pk" PRIMARY KEY("product_id","window_start")
);
--> statement-breakpoint
CREATE INDEX "clickstream_batch_idx" ON "analytics"."clickstream" USING btree ("batch_id");--> statement-breakpoint
CREATE INDEX "clickstream_event_time_idx" ON "analytics"."clickstream" USING btree ("event_time");--> statement-breakpoint
CREATE INDEX "risk_windows_level_idx" ON "analytics"."risk_windows" USING btree ("level","window_start");--> statement-breakpoint
CREATE INDEX "sessions_key_end_idx" ON "analytics"."sessions" USING btree ("user_id","session_id","end_time");--> statement-breakpoint
CREATE INDEX "sessions_start_idx" ON "analytics"."sessions" USING btree ("start_time","user_id","session_id");--> statement-breakpoint
CREATE INDEX "velocity_windows_start_idx" ON "analytics"."velocity_windows" USING btree ("window_start");