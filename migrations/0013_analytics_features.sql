CREATE TABLE "analytics"."feature_days" (
	"user_id" text NOT NULL,
	"day" date NOT NULL,
	"counts" jsonb NOT NULL,
	CONSTRAINT "feature_days_user_id_day_pk" PRIMARY KEY("user_id","day")
);
--> statement-breakpoint
CREATE TABLE "analytics"."user_features" (
	"user_id" text NOT NULL,
	"feature_type" text NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "user_features_user_id_feature_type_pk" PRIMARY KEY("user_id","feature_type")
);
--> statement-breakpoint
CREATE INDEX "user_features_expires_idx" ON "analytics"."user_features" USING btree ("expires_at");--> statement-breakpoint
-- Hand-written: add_counts merges two counter objects ({"name": n, ...}) by adding the counts of
-- the same name; the feature counters' upsert uses it (analytics.feature_days.counts).
CREATE FUNCTION "analytics"."add_counts"(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
  FROM (SELECT key, sum(value::bigint) AS total FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) e GROUP BY key) s
$$;
