CREATE TABLE "outbox"."subscription_members" (
	"subscription" text NOT NULL,
	"process_id" text NOT NULL,
	"joined_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "subscription_members_subscription_process_id_pk" PRIMARY KEY("subscription","process_id")
);
