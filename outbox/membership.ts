import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { Db } from "../src/db/client.ts";
import { partitionOf } from "./hashtext.ts";
import { executePrepared } from "./store.ts";

/**
 * Membership shares a subscription's partitions out among the processes running it, so adding
 * a process adds throughput instead of leaving it idle behind the first one's leases, and it is
 * the failure detector that lets the others take over from a process that died.
 *
 * Every process heartbeats one row per subscription it runs in `outbox.subscription_members`
 * (four times per `timeoutMs`, default 1.5 s, on a connection of its own so that a busy pool
 * cannot delay it) and reads back the live members. Partition `p` of a subscription with live
 * members `m[0..k-1]` (sorted by process id) belongs to `m[(p + hash(subscription)) mod k]`;
 * the hash spreads single-partition subscriptions across processes too. A worker only takes
 * the lease of a partition assigned to its process, and hands a leased partition back (between
 * batches) once it is assigned elsewhere.
 *
 * A process that dies stops heartbeating: `timeoutMs` after its last beat its row has expired,
 * the others' next beat (a quarter of `timeoutMs` later at most) no longer counts it, and they
 * take its partitions over at once, since a lease whose owner has no live row is free (see
 * `worker/lease.ts`). After a `kill -9` its partitions deliver again within about two seconds.
 *
 * The assignment only decides who tries: the lease, checked under the checkpoint's row lock by
 * the advance that commits each batch, stays what makes delivery exclusive. While processes
 * disagree for a moment (one has not yet seen another join or leave) a partition is at worst
 * idle until the next heartbeat, never committed twice. A live process taken for dead (its
 * heartbeats held up longer than `timeoutMs`) loses its partitions the same way, and finds out
 * at its next checkpoint advance; `alive()` lets its workers stop starting batches as soon as its
 * own heartbeat is overdue, before anyone else can act on it.
 */
export class Membership {
  #members = new Map<string, readonly string[]>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #refreshing: Promise<void> | undefined;
  // performance.now() when the last heartbeat that succeeded was sent: our row is live until
  // at least that moment plus timeoutMs (the server stamps its expiry later, never earlier).
  #beatSentAt = Number.NEGATIVE_INFINITY;
  readonly #listeners = new Set<() => void>();

  constructor(
    private readonly db: Db,
    readonly processId: string,
    private readonly subscriptions: readonly string[],
    /** How long after its last heartbeat a process is taken for dead. */
    readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** heartbeatMs is how often the heartbeat runs: four beats per timeout, so three can be late. */
  get heartbeatMs(): number {
    return this.timeoutMs / 4;
  }

  /** start heartbeats once (so the first assignment is known) and then every `heartbeatMs`. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((err) => this.log.warn({ err }, "outbox membership heartbeat failed"));
    }, this.heartbeatMs);
  }

  /** refresh renews this process's rows and reads the live members of its subscriptions. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    if (this.subscriptions.length === 0) return;
    const sentAt = performance.now();
    // One statement: renew our rows, drop rows long dead (never ours), read who is alive. The
    // read sees the table as it was before this statement, so our own id is added below.
    const rows = await executePrepared<{ subscription: string; process_id: string }>(
      this.db,
      sql`
      with beat as (
        insert into outbox.subscription_members (subscription, process_id, expires_at)
        select s, ${this.processId}, now() + make_interval(secs => ${this.timeoutMs / 1000}) from unnest(${sql.param(this.subscriptions)}::text[]) s
        on conflict (subscription, process_id) do update set expires_at = excluded.expires_at
      ), swept as (
        delete from outbox.subscription_members
         where expires_at < now() - interval '1 hour' and process_id <> ${this.processId}
      )
      select subscription, process_id from outbox.subscription_members
       where subscription = any(${sql.param(this.subscriptions)}::text[]) and expires_at > now() and process_id <> ${this.processId}`,
      "outbox_membership_heartbeat",
    );
    this.#beatSentAt = sentAt;
    const next = new Map<string, string[]>(this.subscriptions.map((s) => [s, [this.processId]]));
    for (const r of rows) next.get(r.subscription)?.push(r.process_id);
    for (const ids of next.values()) ids.sort();
    const changed = [...next].some(([s, ids]) => ids.join("\n") !== this.#members.get(s)?.join("\n"));
    this.#members = next;
    if (changed) for (const listener of this.#listeners) listener();
  }

  /**
   * alive says whether this process's own heartbeat is recent enough that no other process can
   * yet take it for dead: false after a pause or a stall of three quarters of `timeoutMs`.
   */
  alive(): boolean {
    return performance.now() - this.#beatSentAt < (this.timeoutMs * 3) / 4;
  }

  /** onChange calls `listener` after a heartbeat that found members joined or gone; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** members is the live processes of `subscription` as this process last saw them, sorted. */
  members(subscription: string): readonly string[] {
    return this.#members.get(subscription) ?? [this.processId];
  }

  /** owns says whether `partition` of `subscription` is this process's to lease. */
  owns(subscription: string, partition: number): boolean {
    const members = this.members(subscription);
    if (members.length === 1) return true;
    return members[assignee(subscription, partition, members.length)] === this.processId;
  }

  /** stop ends the heartbeat and withdraws this process, so the others rebalance at their next heartbeat. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#listeners.clear();
    await this.#refreshing?.catch(() => {});
    if (this.subscriptions.length === 0) return;
    await this.db
      .execute(
        sql`delete from outbox.subscription_members where process_id = ${this.processId} and subscription = any(${sql.param(this.subscriptions)}::text[])`,
      )
      .catch((err) => this.log.warn({ err }, "outbox membership withdrawal failed"));
  }
}

/** assignee is the index, among `k` sorted members, of the member partition `p` belongs to. */
export function assignee(subscription: string, p: number, k: number): number {
  return (p + partitionOf(subscription, k)) % k;
}
