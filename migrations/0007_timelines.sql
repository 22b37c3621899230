CREATE SCHEMA "timelines";
--> statement-breakpoint
CREATE TABLE "timelines"."authors" (
	"author_id" uuid PRIMARY KEY NOT NULL,
	"followers_count" integer DEFAULT 0 NOT NULL,
	"merged_on_read" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "timelines"."entries" (
	"user_id" uuid NOT NULL,
	"post_id" uuid NOT NULL,
	"author_id" uuid NOT NULL,
	CONSTRAINT "entries_user_id_post_id_pk" PRIMARY KEY("user_id","post_id")
);
--> statement-breakpoint
CREATE TABLE "timelines"."follows" (
	"follower_id" uuid NOT NULL,
	"followee_id" uuid NOT NULL,
	CONSTRAINT "follows_follower_id_followee_id_pk" PRIMARY KEY("follower_id","followee_id")
);
--> statement-breakpoint
CREATE TABLE "timelines"."posts" (
	"post_id" uuid PRIMARY KEY NOT NULL,
	"author_id" uuid NOT NULL,
	"deleted" boolean DEFAULT false NOT NULL,
	"fanned_out" boolean DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE TABLE "timelines"."readers" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"last_active_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "entries_post_idx" ON "timelines"."entries" USING btree ("post_id");--> statement-breakpoint
CREATE INDEX "follows_followee_idx" ON "timelines"."follows" USING btree ("followee_id","follower_id");--> statement-breakpoint
CREATE INDEX "posts_author_idx" ON "timelines"."posts" USING btree ("author_id","post_id");