-- Hand-written: the Postgres feature store keeps one row per user (its items by feature type, each
-- with its own updatedAt and ttl) instead of one per (user, feature type). A refresh writes every
-- feature of thousands of users at once, and upserting seven rows per user cost about five times
-- as much. The items are carried over; the new table takes the old one's name.
CREATE TABLE "analytics"."user_features_by_user" (
	"user_id" text PRIMARY KEY NOT NULL,
	"items" jsonb NOT NULL
) WITH (fillfactor = 70);
--> statement-breakpoint
INSERT INTO "analytics"."user_features_by_user" ("user_id", "items")
SELECT "user_id", jsonb_object_agg("feature_type", jsonb_build_object(
         'value', "value",
         'updatedAt', to_char("updated_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
         'ttl', extract(epoch FROM "expires_at")::bigint))
  FROM "analytics"."user_features"
 GROUP BY "user_id";
--> statement-breakpoint
DROP TABLE "analytics"."user_features";
--> statement-breakpoint
ALTER TABLE "analytics"."user_features_by_user" RENAME TO "user_features";
--> statement-breakpoint
ALTER TABLE "analytics"."user_features" RENAME CONSTRAINT "user_features_by_user_pkey" TO "user_features_pkey";
