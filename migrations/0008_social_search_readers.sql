CREATE SCHEMA "search";
--> statement-breakpoint
CREATE TABLE "search"."posts" (
	"post_id" uuid PRIMARY KEY NOT NULL,
	"author_id" uuid NOT NULL,
	"document" "tsvector" NOT NULL,
	"deleted" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "search"."users" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"display_name" text NOT NULL,
	"version" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "posts_document_idx" ON "search"."posts" USING gin ("document") WHERE not "search"."posts"."deleted";--> statement-breakpoint
CREATE INDEX "readers_last_active_idx" ON "timelines"."readers" USING btree ("last_active_at");--> statement-breakpoint
-- Hand-written: prefix search (lower(name) LIKE 'abc%') on either name, whatever the database collation.
CREATE INDEX "users_username_prefix_idx" ON "search"."users" (lower("username") text_pattern_ops);
--> statement-breakpoint
CREATE INDEX "users_display_name_prefix_idx" ON "search"."users" (lower("display_name") text_pattern_ops);
