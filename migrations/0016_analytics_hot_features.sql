DROP INDEX "analytics"."user_features_expires_idx";--> statement-breakpoint
-- Hand-written: every feature refresh rewrites the user's rows (value, updated_at, expires_at).
-- With no index on expires_at (nothing reads by it) and a third of each page left free, those
-- updates stay on their page (HOT) and write no index entries.
ALTER TABLE "analytics"."user_features" SET (fillfactor = 70);
