ALTER TABLE "users"."accounts" ADD COLUMN "token_version" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "disabled_at" timestamp with time zone;