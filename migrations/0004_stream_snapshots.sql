CREATE TABLE "outbox"."snapshots" (
	"stream_id" text PRIMARY KEY NOT NULL,
	"version" integer NOT NULL,
	"decider" text NOT NULL,
	"evolve_version" integer NOT NULL,
	"state" jsonb NOT NULL,
	"taken_at" timestamp with time zone DEFAULT now() NOT NULL
);
