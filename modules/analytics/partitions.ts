/**
 * The clickstream's daily partitions (by `received_at`, UTC): made ahead, and dropped past the
 * retention, by the SQL functions of migration 0012. A background task keeps yesterday to
 * `PARTITION_DAYS_AHEAD` days ahead in place every hour, so ingestion never waits on DDL in the
 * ordinary run; when an insert still finds no partition (a process whose clock is ahead, an
 * API-only deployment whose workers are down), ingestion makes its own day's partition and
 * retries (see ingest.ts).
 *
 * Retention (`ANALYTICS_RETENTION_DAYS`, 0 keeps everything): a day's partition is dropped whole
 * once it is that many days old, which is cheap (no row-by-row delete, no vacuum debt), after its
 * event ids are deleted from `clickstream_ids`; an id sent again after its day was dropped is
 * stored again. The aggregates are not touched: they stay as they were counted.
 */
import { sql } from "drizzle-orm";
import type { BackgroundTask, Db, Executor } from "../../src/platform.ts";

/** PARTITION_DAYS_AHEAD: how many days after today have a partition ready. */
export const PARTITION_DAYS_AHEAD = 7;
const DAY_MS = 86_400_000;

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** createPartitions makes the daily partitions of `days` days from the UTC day of `from` that are missing; returns how many it made. */
export async function createPartitions(db: Executor, from: Date, days: number): Promise<number> {
  const [row] = (await db.execute(sql`select analytics.create_clickstream_partitions(${utcDay(from.getTime())}::date, ${days}::int) as made`)) as unknown as {
    made: number;
  }[];
  return row!.made;
}

/**
 * dropPartitions drops the daily partitions of days before `before`'s UTC day (and their ids),
 * and the consumers' records of the batches those days held; returns how many partitions.
 */
export async function dropPartitions(db: Executor, before: Date): Promise<number> {
  const day = utcDay(before.getTime());
  const [row] = (await db.execute(sql`select analytics.drop_clickstream_partitions(${day}::date) as dropped`)) as unknown as {
    dropped: number;
  }[];
  await db.execute(sql`delete from analytics.consumer_batches where received_at < ${day}::date`);
  return row!.dropped;
}

/**
 * isMissingPartition tells whether `err` is Postgres refusing a row no partition takes (23514,
 * "no partition of relation ... found for row").
 */
export function isMissingPartition(err: unknown): boolean {
  const e = ((err as { cause?: unknown })?.cause ?? err) as { code?: string; message?: string };
  return e?.code === "23514" && /no partition/.test(e.message ?? "");
}

/**
 * partitionMaintenance is the background task: at start and every `intervalMs` (default an hour)
 * it makes the partitions from yesterday to PARTITION_DAYS_AHEAD days ahead, and drops those
 * older than `retentionDays` when that is set. A failed round is reported and retried next time.
 */
export function partitionMaintenance(deps: {
  db: Db;
  retentionDays: number;
  clock: () => Date;
  intervalMs?: number;
  onError?: (err: unknown) => void;
}): BackgroundTask {
  const intervalMs = deps.intervalMs ?? 3600_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let round: Promise<void> | undefined;
  let stopped = true;
  const run = async () => {
    const now = deps.clock().getTime();
    try {
      await createPartitions(deps.db, new Date(now - DAY_MS), PARTITION_DAYS_AHEAD + 2);
      if (deps.retentionDays > 0) await dropPartitions(deps.db, new Date(now - deps.retentionDays * DAY_MS));
    } catch (err) {
      if (!stopped) deps.onError?.(err);
    }
  };
  const tick = () => {
    round = run().finally(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  return {
    name: "analytics.partitions",
    start() {
      if (!stopped) return;
      stopped = false;
      tick();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}
