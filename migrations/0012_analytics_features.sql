CREATE TABLE "analytics"."feature_counters" (
	"user_id" text NOT NULL,
	"day" date NOT NULL,
	"counter" text NOT NULL,
	"n" bigint NOT NULL,
	CONSTRAINT "feature_counters_user_id_day_counter_pk" PRIMARY KEY("user_id","day","counter")
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
CREATE INDEX "user_features_expires_idx" ON "analytics"."user_features" USING btree ("expires_at");