import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { Db } from "../src/db/client.ts";
import { partitionOf } from "./hashtext.ts";
import { executePrepared } from "./store.ts";

/**
 * Membership shares a subscription's partitions out among the processes running it, so adding
 * a process adds throughput instead of leaving it idle behind the first one's leases.
 *
 * Every process heartbeats one row per subscription it runs in `outbox.subscription_members`
 * (every third of the lease time) and reads back the live members. Partition `p` of a
 * subscription with live members `m[0..k-1]` (sorted by process id) belongs to
 * `m[(p + hash(subscription)) mod k]`; the hash spreads single-partition subscriptions across
 * processes too. A worker only takes the lease of a partition assigned to its process, and
 * hands a leased partition back (between batches) once it is assigned elsewhere.
 *
 * The assignment only decides who tries: the lease stays what makes processing exclusive. While
 * processes disagree for a moment (one has not yet seen another join or leave) a partition is at
 * worst idle until the next heartbeat, never handled twice. A process that dies stops
 * heartbeating; its row expires with its leases and the others take its partitions over.
 */
export class Membership {
  #members = new Map<string, readonly string[]>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    readonly processId: string,
    private readonly subscriptions: readonly string[],
    private readonly leaseSeconds: number,
    private readonly log: Logger,
  ) {}

  /** start heartbeats once (so the first assignment is known) and then every third of the lease. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((err) => this.log.warn({ err }, "outbox membership heartbeat failed"));
    }, (this.leaseSeconds * 1000) / 3);
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
    // One statement: renew our rows, drop rows long dead (never ours), read who is alive. The
    // read sees the table as it was before this statement, so our own id is added below.
    const rows = await executePrepared<{ subscription: string; process_id: string }>(
      this.db,
      sql`
      with beat as (
        insert into outbox.subscription_members (subscription, process_id, expires_at)
        select s, ${this.processId}, now() + make_interval(secs => ${this.leaseSeconds}) from unnest(${sql.param(this.subscriptions)}::text[]) s
        on conflict (subscription, process_id) do update set expires_at = excluded.expires_at
      ), swept as (
        delete from outbox.subscription_members
         where expires_at < now() - interval '1 hour' and process_id <> ${this.processId}
      )
      select subscription, process_id from outbox.subscription_members
       where subscription = any(${sql.param(this.subscriptions)}::text[]) and expires_at > now() and process_id <> ${this.processId}`,
      "outbox_membership_heartbeat",
    );
    const next = new Map<string, string[]>(this.subscriptions.map((s) => [s, [this.processId]]));
    for (const r of rows) next.get(r.subscription)?.push(r.process_id);
    for (const ids of next.values()) ids.sort();
    this.#members = next;
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
    await this.#refreshing?.catch(() => {});
    if (this.subscriptions.length === 0) return;
    await this.db
      .execute(sql`delete from outbox.subscription_members where process_id = ${this.processId} and subscription = any(${sql.param(this.subscriptions)}::text[])`)
      .catch((err) => this.log.warn({ err }, "outbox membership withdrawal failed"));
  }
}

/** assignee is the index, among `k` sorted members, of the member partition `p` belongs to. */
export function assignee(subscription: string, p: number, k: number): number {
  return (p + partitionOf(subscription, k)) % k;
}
