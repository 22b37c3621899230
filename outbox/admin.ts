import { sql } from "drizzle-orm";
import type { Db } from "../src/db/client.ts";
import { NotFoundError, ValidationError } from "../src/errors.ts";
import type { EventEnvelope } from "./envelope.ts";
import { HORIZON } from "./horizon.ts";
import { EVENT_COLUMNS, type EventRow, toEnvelope } from "./store.ts";
import { subscriptionFilter } from "./worker/index.ts";

const rows = <T>(r: unknown) => r as T[];

/** SubscriptionStatus is one partition's state as the admin API shows it. */
export interface SubscriptionStatus {
  name: string;
  partition: number;
  partitions: number;
  status: "active" | "paused";
  checkpoint: { transactionId: string; position: string };
  processed: string;
  lag: { events: number; seconds: number };
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
  /** The live processes running this subscription, among which its partitions are shared. */
  members: string[];
  failing: { position: string; attempts: number } | null;
  lastError: string | null;
  lastErrorAt: string | null;
  hostedHere: boolean;
  kind: string;
}

// Counting lag is bounded so the admin page stays cheap on a long backlog.
const LAG_COUNT_CAP = 100_000;

/** listSubscriptions reports every partition known to the database, with lag in events and seconds. */
export async function listSubscriptions(db: Db, local: Map<string, { kind: string; types: readonly string[] | null }>): Promise<SubscriptionStatus[]> {
  const subs = rows<{
    name: string;
    partition: number;
    partitions: number;
    status: "active" | "paused";
    last_transaction_id: string;
    last_position: string;
    processed_count: string;
    lease_owner: string | null;
    lease_expires_at: Date | null;
    failing_position: string | null;
    failing_attempts: number;
    last_error: string | null;
    last_error_at: Date | null;
    members: string[] | null;
  }>(
    await db.execute(sql`
      select s.name, s.partition, s.partitions, s.status, s.last_transaction_id::text, s.last_position::text, s.processed_count::text,
             s.lease_owner, s.lease_expires_at, s.failing_position::text, s.failing_attempts, s.last_error, s.last_error_at, m.members
        from outbox.subscriptions s
        left join lateral (
          select array_agg(process_id order by process_id) as members from outbox.subscription_members
           where subscription = s.name and expires_at > now()) m on true
       order by s.name, s.partition`),
  );
  const out: SubscriptionStatus[] = [];
  for (const s of subs) {
    const types = local.get(s.name)?.types ?? null;
    const [lag] = rows<{ events: number; oldest: Date | null }>(
      await db.execute(sql`
        select count(*)::int as events, min(time) as oldest from (
          select time from outbox.events
           where (transaction_id, position) > (${s.last_transaction_id}::xid8, ${s.last_position}::bigint)
             ${subscriptionFilter(types, s.partitions, s.partition)}
           limit ${LAG_COUNT_CAP}) pending`),
    );
    out.push({
      name: s.name,
      partition: s.partition,
      partitions: s.partitions,
      status: s.status,
      checkpoint: { transactionId: s.last_transaction_id, position: s.last_position },
      processed: s.processed_count,
      lag: { events: lag?.events ?? 0, seconds: lag?.oldest ? Math.max(0, (Date.now() - new Date(lag.oldest).getTime()) / 1000) : 0 },
      leaseOwner: s.lease_owner,
      leaseExpiresAt: s.lease_expires_at ? new Date(s.lease_expires_at).toISOString() : null,
      members: s.members ?? [],
      failing: s.failing_position ? { position: s.failing_position, attempts: s.failing_attempts } : null,
      lastError: s.last_error,
      lastErrorAt: s.last_error_at ? new Date(s.last_error_at).toISOString() : null,
      hostedHere: local.has(s.name),
      kind: local.get(s.name)?.kind ?? "handler",
    });
  }
  return out;
}

/** setStatus pauses or resumes every partition of a subscription. */
export async function setStatus(db: Db, name: string, status: "active" | "paused"): Promise<void> {
  const r = rows(await db.execute(sql`update outbox.subscriptions set status = ${status}, updated_at = now() where name = ${name} returning 1`));
  if (r.length === 0) throw new NotFoundError(`subscription ${name}`, "EVENTS.SUBSCRIPTION_NOT_FOUND");
}

/**
 * replay moves every partition's checkpoint to just before the first event at or after a
 * position, or at or after a time, so that event and every later one in log order is
 * delivered again. Returns the position replay starts at (null when nothing is that new).
 */
export async function replay(db: Db, name: string, from: { position: string } | { time: string }): Promise<{ fromPosition: string | null }> {
  return db.transaction(async (tx) => {
    const subs = rows(await tx.execute(sql`select 1 from outbox.subscriptions where name = ${name} for update`));
    if (subs.length === 0) throw new NotFoundError(`subscription ${name}`, "EVENTS.SUBSCRIPTION_NOT_FOUND");
    const [first] = rows<{ transaction_id: string; position: string }>(
      await tx.execute(
        "position" in from
          ? sql`select transaction_id::text, position::text from outbox.events where position >= ${from.position}::bigint order by events.position limit 1`
          : sql`select transaction_id::text, position::text from outbox.events where time >= ${from.time}::timestamptz order by events.position limit 1`,
      ),
    );
    // With nothing to replay, park the checkpoint at the log's current end.
    const [end] = rows<{ transaction_id: string; position: string }>(
      await tx.execute(sql`select transaction_id::text, position::text from outbox.events order by events.transaction_id desc, events.position desc limit 1`),
    );
    const cpTx = first?.transaction_id ?? end?.transaction_id ?? "0";
    const cpPos = first ? String(BigInt(first.position) - 1n) : (end?.position ?? "0");
    await tx.execute(sql`
      update outbox.subscriptions
         set last_transaction_id = ${cpTx}::xid8, last_position = ${cpPos}::bigint,
             failing_position = null, failing_attempts = 0, first_failed_at = null, start_snapshot = null, updated_at = now()
       where name = ${name}`);
    return { fromPosition: first?.position ?? null };
  });
}

/** DeadLetterStatus is where a dead letter stands: parked, asked to be redriven, or redriven. */
export type DeadLetterStatus = "dead" | "redriving" | "redriven";

/** DeadLetter is one parked event as the admin API shows it. */
export interface DeadLetter {
  id: string;
  subscription: string;
  partition: number;
  status: DeadLetterStatus;
  error: string;
  attempts: number;
  firstFailedAt: string;
  lastFailedAt: string;
  redrivenAt: string | null;
  event: EventEnvelope;
}

/** DeadLetterFilter selects dead letters for the admin list; `before` is the id to continue after. */
export interface DeadLetterFilter {
  subscription?: string | undefined;
  status?: DeadLetterStatus | undefined;
  before?: string | undefined;
  limit: number;
}

/**
 * listDeadLetters lists dead letters newest first, optionally for one subscription and status.
 * The order is by id, a UUID v7 made when the event was first dead-lettered: unique and fixed
 * for the row's life (a redrive that fails again keeps it), so `before` pages stably.
 */
export async function listDeadLetters(db: Db, filter: DeadLetterFilter): Promise<DeadLetter[]> {
  const list = rows<
    EventRow & {
      dl_id: string;
      subscription: string;
      dl_partition: number;
      status: DeadLetterStatus;
      error: string;
      attempts: number;
      first_failed_at: Date;
      last_failed_at: Date;
      redriven_at: Date | null;
    }
  >(
    await db.execute(sql`
      select d.id as dl_id, d.subscription, d.partition as dl_partition, d.status, d.error, d.attempts, d.first_failed_at, d.last_failed_at, d.redriven_at,
             e.position::text as position, e.transaction_id::text as transaction_id, e.id, e.source, e.type, e.subject, e.time, e.data, e.correlation_id, e.causation_id, e.actor_id
        from outbox.dead_letters d join outbox.events e on e.position = d.event_position
       where true
         ${filter.subscription ? sql`and d.subscription = ${filter.subscription}` : sql``}
         ${filter.status ? sql`and d.status = ${filter.status}` : sql``}
         ${filter.before ? sql`and d.id < ${filter.before}::uuid` : sql``}
       order by d.id desc
       limit ${filter.limit}`),
  );
  return list.map((r) => ({
    id: r.dl_id,
    subscription: r.subscription,
    partition: r.dl_partition,
    status: r.status,
    error: r.error,
    attempts: r.attempts,
    firstFailedAt: new Date(r.first_failed_at).toISOString(),
    lastFailedAt: new Date(r.last_failed_at).toISOString(),
    redrivenAt: r.redriven_at ? new Date(r.redriven_at).toISOString() : null,
    event: toEnvelope(r),
  }));
}

/** requestRedrive marks a dead letter for redelivery by its subscription's worker. */
export async function requestRedrive(db: Db, id: string): Promise<void> {
  const r = rows(await db.execute(sql`update outbox.dead_letters set status = 'redriving' where id = ${id}::uuid and status = 'dead' returning 1`));
  if (r.length === 0) {
    const exists = rows(await db.execute(sql`select 1 from outbox.dead_letters where id = ${id}::uuid`));
    if (exists.length === 0) throw new NotFoundError("dead letter", "EVENTS.DEAD_LETTER_NOT_FOUND");
  }
}

/** discardDeadLetter deletes a dead letter for good. */
export async function discardDeadLetter(db: Db, id: string): Promise<void> {
  const r = rows(await db.execute(sql`delete from outbox.dead_letters where id = ${id}::uuid returning 1`));
  if (r.length === 0) throw new NotFoundError("dead letter", "EVENTS.DEAD_LETTER_NOT_FOUND");
}

/** EventKey is where an event sits in log order as readers see it: (transaction id, position). */
export interface EventKey {
  transactionId: string;
  position: string;
}

/** EventFilter selects events for the admin event query; `after` is the key to continue after. */
export interface EventFilter {
  correlationId?: string | undefined;
  type?: string | undefined;
  source?: string | undefined;
  subject?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  after?: EventKey | undefined;
  limit: number;
}

/**
 * queryEvents lists events in the order subscriptions read them: by (transaction id, position),
 * and only below the oldest running transaction. Positions are handed out at insert, not at
 * commit, so paging by position alone would step past an event whose transaction commits late;
 * here every event that becomes visible later sorts after the last key served, so a walk with
 * `after` never skips or repeats one. An event shows once every transaction older than it has
 * ended: normally within milliseconds, at worst as long as the oldest open transaction in the
 * cluster that may append (see `./horizon.ts`), exactly as for subscriptions.
 */
export async function queryEvents(db: Db, f: EventFilter): Promise<{ event: EventEnvelope; key: EventKey }[]> {
  if (f.from && f.to && new Date(f.from) > new Date(f.to))
    throw new ValidationError("from must not be after to", [{ path: "query.from", message: "after to" }]);
  const list = rows<EventRow>(
    await db.execute(sql`
      select ${EVENT_COLUMNS} from outbox.events
       where transaction_id < (select ${sql.raw(HORIZON)})
         ${f.correlationId ? sql`and correlation_id = ${f.correlationId}` : sql``}
         ${f.type ? sql`and type = ${f.type}` : sql``}
         ${f.source ? sql`and source = ${f.source}` : sql``}
         ${f.subject ? sql`and subject = ${f.subject}` : sql``}
         ${f.from ? sql`and time >= ${f.from}::timestamptz` : sql``}
         ${f.to ? sql`and time < ${f.to}::timestamptz` : sql``}
         ${f.after ? sql`and (transaction_id, position) > (${f.after.transactionId}::xid8, ${f.after.position}::bigint)` : sql``}
       order by events.transaction_id, events.position
       limit ${f.limit}`),
  );
  return list.map((r) => ({ event: toEnvelope(r), key: { transactionId: r.transaction_id, position: r.position } }));
}

/** LineageNode is an event with the events it caused. */
export interface LineageNode {
  event: EventEnvelope;
  caused: LineageNode[];
}

// Bounds keep a pathological or cyclic causation graph from running away.
const MAX_DEPTH = 64;
const MAX_NODES = 5000;

/**
 * lineage walks the causation chain from an event up to its root, then returns the tree of
 * every event the root caused, so the asked-for event is seen in its whole context.
 */
export async function lineage(
  db: Db,
  id: string,
): Promise<{ event: EventEnvelope; ancestors: EventEnvelope[]; root: EventEnvelope; tree: LineageNode; truncated: boolean }> {
  const chain = rows<EventRow & { depth: number }>(
    await db.execute(sql`
      with recursive up as (
        select ${EVENT_COLUMNS}, 0 as depth from outbox.events where id = ${id}::uuid
        union all
        select e.position::text, e.transaction_id::text, e.id, e.source, e.type, e.subject, e.time, e.data, e.correlation_id, e.causation_id, e.actor_id, e.stream_id, e.stream_version, up.depth + 1
          from outbox.events e join up on e.id = up.causation_id
         where up.depth < ${MAX_DEPTH}
      ) select * from up order by depth`),
  );
  if (chain.length === 0) throw new NotFoundError("event", "EVENTS.NOT_FOUND");
  const event = toEnvelope(chain[0]!);
  const root = toEnvelope(chain[chain.length - 1]!);
  const ancestors = chain.slice(1).map(toEnvelope);
  const down = rows<EventRow & { depth: number }>(
    await db.execute(sql`
      with recursive down as (
        select ${EVENT_COLUMNS}, 0 as depth from outbox.events where id = ${root.id}::uuid
        union all
        select e.position::text, e.transaction_id::text, e.id, e.source, e.type, e.subject, e.time, e.data, e.correlation_id, e.causation_id, e.actor_id, e.stream_id, e.stream_version, down.depth + 1
          from outbox.events e join down on e.causation_id = down.id
         where down.depth < ${MAX_DEPTH}
      ) select * from down order by depth, position::bigint limit ${MAX_NODES + 1}`),
  );
  const truncated = down.length > MAX_NODES;
  const nodes = new Map<string, LineageNode>();
  for (const r of down.slice(0, MAX_NODES)) {
    if (nodes.has(r.id)) continue;
    const node: LineageNode = { event: toEnvelope(r), caused: [] };
    nodes.set(r.id, node);
    if (r.depth > 0 && r.causation_id) nodes.get(r.causation_id)?.caused.push(node);
  }
  return { event, ancestors, root, tree: nodes.get(root.id)!, truncated };
}
