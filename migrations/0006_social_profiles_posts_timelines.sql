CREATE SCHEMA "posts";
--> statement-breakpoint
CREATE SCHEMA "timelines";
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
CREATE TABLE "users"."counted_posts" (
	"post_id" uuid PRIMARY KEY NOT NULL,
	"author_id" uuid NOT NULL,
	"deleted" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users"."follows" (
	"follower_id" uuid NOT NULL,
	"followee_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "follows_follower_id_followee_id_pk" PRIMARY KEY("follower_id","followee_id"),
	CONSTRAINT "follows_not_self" CHECK ("users"."follows"."follower_id" <> "users"."follows"."followee_id")
);
--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "bio" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "followers_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "following_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "posts_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "email_notifications" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD COLUMN "post_notifications" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "users"."follows" ADD CONSTRAINT "follows_follower_id_accounts_id_fk" FOREIGN KEY ("follower_id") REFERENCES "users"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users"."follows" ADD CONSTRAINT "follows_followee_id_accounts_id_fk" FOREIGN KEY ("followee_id") REFERENCES "users"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "posts_author_idx" ON "posts"."posts" USING btree ("author_id","id" DESC NULLS LAST) WHERE "posts"."posts"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "posts_replies_idx" ON "posts"."posts" USING btree ("in_reply_to_id","id") WHERE "posts"."posts"."deleted_at" is null and "posts"."posts"."in_reply_to_id" is not null;--> statement-breakpoint
CREATE INDEX "entries_post_idx" ON "timelines"."entries" USING btree ("post_id");--> statement-breakpoint
CREATE INDEX "follows_followee_idx" ON "timelines"."follows" USING btree ("followee_id","follower_id");--> statement-breakpoint
CREATE INDEX "posts_author_idx" ON "timelines"."posts" USING btree ("author_id","post_id");--> statement-breakpoint
CREATE INDEX "follows_following_idx" ON "users"."follows" USING btree ("follower_id","created_at","followee_id");--> statement-breakpoint
CREATE INDEX "follows_followers_idx" ON "users"."follows" USING btree ("followee_id","created_at","follower_id");--> statement-breakpoint
ALTER TABLE "users"."accounts" ADD CONSTRAINT "accounts_counts_non_negative" CHECK ("users"."accounts"."followers_count" >= 0 and "users"."accounts"."following_count" >= 0 and "users"."accounts"."posts_count" >= 0);