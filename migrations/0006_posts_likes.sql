CREATE SCHEMA "posts";
--> statement-breakpoint
CREATE TABLE "posts"."likes" (
	"post_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "likes_post_id_user_id_pk" PRIMARY KEY("post_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "posts"."posts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"author_id" uuid NOT NULL,
	"content" text NOT NULL,
	"media_urls" text[] DEFAULT '{}' NOT NULL,
	"tags" text[] DEFAULT '{}' NOT NULL,
	"in_reply_to_id" uuid,
	"likes_count" integer DEFAULT 0 NOT NULL,
	"replies_count" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "posts_counts_non_negative" CHECK ("posts"."posts"."likes_count" >= 0 and "posts"."posts"."replies_count" >= 0)
);
--> statement-breakpoint
CREATE INDEX "posts_author_idx" ON "posts"."posts" USING btree ("author_id","id" DESC NULLS LAST) WHERE "posts"."posts"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "posts_replies_idx" ON "posts"."posts" USING btree ("in_reply_to_id","id") WHERE "posts"."posts"."deleted_at" is null and "posts"."posts"."in_reply_to_id" is not null;