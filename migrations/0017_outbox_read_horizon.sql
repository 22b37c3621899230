-- Hand-written: the outbox's read horizon, narrowed to the transactions that may append events.
--
-- A subscription reads the events whose transaction id is below the horizon, so that no event a
-- running transaction commits later can land behind its checkpoint (events are read in
-- (transaction_id, position) order). The horizon was the snapshot's xmin: the oldest transaction
-- still running anywhere in the cluster. Any long write (a big read-model delivery, a bulk
-- import) then held every subscription back until it ended, though it would never append.
--
-- A transaction can now declare, before its first write, that it appends no events:
-- outbox.declare_no_appends() takes a shared advisory lock (which pg_locks shows beside the
-- transaction's id) and sets outbox.no_appends for the rest of the transaction, which a statement
-- trigger on outbox.events checks: such a transaction cannot append. The horizon,
-- outbox.read_horizon(), is then the oldest running transaction that has not declared so
-- (or the snapshot's xmax when there is none). It can only err on the safe side: a transaction
-- seen in the snapshot but gone from pg_locks by the time they are read counts as one that may
-- append, which lowers the horizon, never raises it.

CREATE FUNCTION "outbox"."declare_no_appends"() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  -- Declared after a write, the transaction already had an id that readers may have treated as
  -- one that could append; declaring then would be harmless, but a caller doing it is confused.
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'outbox.declare_no_appends() must come before the transaction''s first write';
  END IF;
  PERFORM set_config('outbox.no_appends', 'on', true);
  -- Shared: any number of transactions hold it at once. The key is the outbox's own (0x6f627878, 'obxx').
  PERFORM pg_advisory_xact_lock_shared(1868724344, 1);
END $$;
--> statement-breakpoint
CREATE FUNCTION "outbox"."refuse_declared_appends"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('outbox.no_appends', true) = 'on' THEN
    RAISE EXCEPTION 'this transaction declared that it appends no events (outbox.declare_no_appends)'
      USING ERRCODE = 'raise_exception';
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "events_refuse_declared_appends" BEFORE INSERT ON "outbox"."events"
  FOR EACH STATEMENT EXECUTE FUNCTION "outbox"."refuse_declared_appends"();
--> statement-breakpoint
-- STABLE: it runs on its caller's snapshot (pg_current_snapshot() is the statement's own), so the
-- horizon belongs to the same snapshot the caller reads the events with. pg_locks is read only
-- when some transaction is running (xip not empty).
CREATE FUNCTION "outbox"."read_horizon"() RETURNS xid8
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN pg_snapshot_xmin(s.snap) = pg_snapshot_xmax(s.snap) THEN pg_snapshot_xmax(s.snap)
    ELSE coalesce(
      -- pg_locks is read once: each transaction's own id (and its subtransactions' ids), and the
      -- declarations; a transaction id is declared when its holder also holds the declaration.
      (WITH l AS MATERIALIZED (
         SELECT l.locktype, l.transactionid, l.virtualtransaction FROM pg_locks l
          WHERE l.granted AND ((l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')
             OR (l.locktype = 'advisory' AND l.classid = 1868724344 AND l.objid = 1 AND l.objsubid = 2)))
       SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
        WHERE (x::text::bigint % 4294967296) NOT IN (
          SELECT t.transactionid::text::bigint FROM l t
           WHERE t.locktype = 'transactionid' AND t.virtualtransaction IN (SELECT a.virtualtransaction FROM l a WHERE a.locktype = 'advisory'))),
      pg_snapshot_xmax(s.snap))
  END
  FROM (SELECT pg_current_snapshot() AS snap) AS s
$$;
