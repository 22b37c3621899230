-- Hand-written (no schema change): the feature counters' merge walks only the added counters.
-- add_counts(a, b) used to unpack both objects and group every counter of the user-day (a grows
-- to dozens of counters, b, one delivery's, has a handful); now it looks up each of b's counters
-- in a and overwrites those, leaving a's others as they are. Same result for the same inputs.
CREATE OR REPLACE FUNCTION "analytics"."add_counts"(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT a || coalesce((SELECT jsonb_object_agg(key, coalesce((a ->> key)::bigint, 0) + value::bigint) FROM jsonb_each_text(b)), '{}'::jsonb)
$$;--> statement-breakpoint
-- A user-day's counters are rewritten by every delivery that has its events: leave a third of
-- each page free so that those updates (no indexed column changes) stay on the page (HOT).
ALTER TABLE "analytics"."feature_days" SET (fillfactor = 70);
