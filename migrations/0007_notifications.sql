CREATE SCHEMA "notifications";
--> statement-breakpoint
CREATE TABLE "notifications"."devices" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"platform" text NOT NULL,
	"token" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "devices_platform" CHECK ("notifications"."devices"."platform" in ('ios', 'android', 'web'))
);
--> statement-breakpoint
CREATE TABLE "notifications"."inboxes" (
	"recipient_id" uuid PRIMARY KEY NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notifications"."notifications" (
	"id" uuid PRIMARY KEY NOT NULL,
	"recipient_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"type" text NOT NULL,
	"title" text NOT NULL,
	"message" text NOT NULL,
	"data" jsonb NOT NULL,
	"cause_event_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"read_at" timestamp with time zone,
	CONSTRAINT "notifications_type_snake_case" CHECK ("notifications"."notifications"."type" ~ '^[a-z][a-z0-9_]*$')
);
--> statement-breakpoint
CREATE UNIQUE INDEX "devices_token_key" ON "notifications"."devices" USING btree ("token");--> statement-breakpoint
CREATE INDEX "devices_user_idx" ON "notifications"."devices" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "notifications_cause_recipient_key" ON "notifications"."notifications" USING btree ("cause_event_id","recipient_id");--> statement-breakpoint
CREATE UNIQUE INDEX "notifications_recipient_seq_key" ON "notifications"."notifications" USING btree ("recipient_id","seq");--> statement-breakpoint
CREATE INDEX "notifications_unread_idx" ON "notifications"."notifications" USING btree ("recipient_id","seq") WHERE "notifications"."notifications"."read_at" is null;