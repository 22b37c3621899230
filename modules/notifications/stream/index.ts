/**
 * Live notifications, fed through Postgres so that a notification written by any process
 * reaches every process's open streams.
 *
 * - Writers (`deliver`) NOTIFY channel `notifications` after commit, from the pool (never inside
 *   the writing transaction, where Postgres would take a global lock at commit), with the
 *   recipients' ids, coalesced per tick and chunked under the 8,000-byte payload limit (`*`
 *   when there are too many to name: every stream then checks).
 * - Each process LISTENs on one shared connection (postgres.js's listen connection), started
 *   with the first stream, and fans out to its local streams. A NOTIFY only says "look": each
 *   woken stream reads its rows past the last seq it sent, all woken streams in one query, so a
 *   lost or coalesced NOTIFY costs nothing but latency. Seqs are per recipient and commit in
 *   order (see `schema.ts`), so "past the last seq" never skips a late commit.
 * - The listen connection is watched: every heartbeat the process NOTIFYs a ping to itself;
 *   when (re)listening starts, and when pings stop coming back (the connection was lost and
 *   not re-established), it listens again and every stream reads what it missed.
 * - Heartbeats (SSE comments) go to every stream; each heartbeat also re-reads every stream
 *   (one query), a safety net for a NOTIFY lost in transit.
 * - At most `maxStreamsPerUser` streams per user in a process: a new one closes the oldest.
 *   A stream that falls too far behind (its client does not read) is closed; it resumes with
 *   Last-Event-ID.
 */
import type { rawSql } from "../../../src/platform.ts";
import { type NotificationRow, toView } from "../views.ts";
import { Client } from "./client.ts";
import { ALL, CHANNEL, PING, payloads } from "./payloads.ts";
import type { Notifier, StreamOptions, StreamSink } from "./sink.ts";

export { CHANNEL, payloads } from "./payloads.ts";
export type { Notifier, StreamOptions, StreamSink } from "./sink.ts";

type Sql = ReturnType<typeof rawSql>;

/** Rows one stream reads per round; a full page is followed by the next once the client took it. */
const PAGE = 100;
/** Streams read in one query. */
const STREAMS_PER_QUERY = 500;

/** StreamHandle is an open stream as the route holds it. */
export interface StreamHandle {
  /** closed resolves once the stream is closed, by either side. */
  readonly closed: Promise<void>;
  close(): void;
}

/**
 * NotificationStreams is one process's open notification streams and the NOTIFY that feeds
 * them. It is also the module's `Notifier`.
 */
export class NotificationStreams implements Notifier {
  readonly #sql: Sql;
  readonly #opts: StreamOptions;
  readonly #byUser = new Map<string, Set<Client>>();
  readonly #dirty = new Set<Client>();
  #pumping: Promise<void> | undefined;
  #listening: Promise<void> | undefined;
  #listener: { unlisten(): Promise<void> } | undefined;
  #lastPong = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #toPublish = new Set<string>();
  #publishScheduled = false;
  #stopped = false;

  constructor(sql: Sql, opts: StreamOptions) {
    this.#sql = sql;
    this.#opts = opts;
  }

  /** size is the number of streams open in this process (for one user when given). */
  size(userId?: string): number {
    if (userId) return this.#byUser.get(userId)?.size ?? 0;
    let n = 0;
    for (const s of this.#byUser.values()) n += s.size;
    return n;
  }

  /** ready resolves once this process listens for new notifications (it starts listening on first use). */
  ready(): Promise<void> {
    return this.#ensureListening();
  }

  /**
   * open starts a stream for `userId`. With `lastEventId` it first replays every notification
   * after it; without, it sends only what arrives from now on.
   */
  async open(userId: string, lastEventId: number | undefined, sink: StreamSink): Promise<StreamHandle> {
    if (this.#stopped) throw new Error("notification streams are stopped");
    await this.#ensureListening();
    // Listening first, then the starting point: anything committed after this read NOTIFYs us.
    const start = lastEventId ?? (await this.#latestSeq(userId));
    let done!: () => void;
    const closed = new Promise<void>((r) => (done = r));
    const client = new Client(userId, start, sink, () => {
      this.#remove(client);
      done();
    });
    client.onDrained = () => this.#wake([client]);
    const mine = this.#byUser.get(userId) ?? new Set<Client>();
    this.#byUser.set(userId, mine);
    // Over the bound, the oldest goes: it is the likeliest to be a tab or connection already gone.
    while (mine.size >= this.#opts.maxStreamsPerUser) [...mine].sort((a, b) => a.opened - b.opened)[0]!.close();
    mine.add(client);
    this.#byUser.set(userId, mine); // closing the last one above dropped the set from the map
    this.#startHeartbeat();
    if (lastEventId !== undefined) this.#wake([client]);
    return { closed, close: () => client.close() };
  }

  /** publish NOTIFYs, once per tick, that these recipients have new notifications (call it after commit). */
  publish(recipientIds: readonly string[]): void {
    for (const id of recipientIds) this.#toPublish.add(id);
    if (this.#publishScheduled) return;
    this.#publishScheduled = true;
    setTimeout(() => {
      this.#publishScheduled = false;
      const ids = [...this.#toPublish];
      this.#toPublish.clear();
      for (const payload of payloads(ids)) {
        this.#sql.notify(CHANNEL, payload).catch((err) => this.#opts.onError?.(err, "notify")); // the heartbeat's re-read still delivers
      }
    }, 0);
  }

  /** stop closes every stream and stops listening. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    for (const set of [...this.#byUser.values()]) for (const c of [...set]) c.close();
    await this.#listener?.unlisten().catch(() => {});
  }

  #remove(client: Client): void {
    this.#dirty.delete(client);
    const set = this.#byUser.get(client.userId);
    set?.delete(client);
    if (set?.size === 0) this.#byUser.delete(client.userId);
  }

  async #latestSeq(userId: string): Promise<number> {
    const [row] = await this.#sql<{ seq: string }[]>`
      select coalesce(max(seq), 0)::text as seq from notifications.notifications where recipient_id = ${userId}`;
    return Number(row!.seq);
  }

  #ensureListening(): Promise<void> {
    this.#listening ??= this.#listen().catch((err) => {
      this.#listening = undefined;
      throw err;
    });
    return this.#listening;
  }

  async #listen(): Promise<void> {
    let first = true;
    const old = this.#listener;
    this.#listener = undefined;
    await old?.unlisten().catch(() => {});
    this.#listener = await this.#sql.listen(
      CHANNEL,
      (payload) => this.#onNotify(payload),
      () => {
        // Called on every (re)connection of the listen connection: NOTIFYs sent while it was down are lost.
        this.#lastPong = Date.now();
        if (!first) this.#wakeAll();
        first = false;
      },
    );
  }

  #onNotify(payload: string): void {
    if (payload.startsWith(PING)) {
      this.#lastPong = Date.now();
      return;
    }
    if (payload === ALL) {
      this.#wakeAll();
      return;
    }
    const woken: Client[] = [];
    for (const id of payload.split(",")) for (const c of this.#byUser.get(id) ?? []) woken.push(c);
    this.#wake(woken);
  }

  #startHeartbeat(): void {
    if (this.#heartbeat) return;
    // Pings were not sent while no stream was open: count the silence from now.
    this.#lastPong = Date.now();
    this.#heartbeat = setInterval(() => this.#beat(), this.#opts.heartbeatMs);
    this.#heartbeat.unref?.();
  }

  #beat(): void {
    if (this.size() === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      return;
    }
    const now = new Date().toISOString();
    for (const set of this.#byUser.values()) for (const c of set) c.enqueue(() => c.sink.comment(`heartbeat ${now}`));
    // No ping came back for three beats: the listen connection is gone for good. Listen anew,
    // and once listening every stream reads what it missed.
    if (this.#listening && Date.now() - this.#lastPong > 3 * this.#opts.heartbeatMs) {
      this.#lastPong = Date.now();
      this.#listening = this.#listen()
        .then(() => this.#wakeAll())
        .catch((err) => {
          this.#opts.onError?.(err, "listen");
        });
    }
    this.#sql.notify(CHANNEL, `${PING}${process.pid}`).catch(() => {});
    this.#wakeAll();
  }

  #wakeAll(): void {
    const all: Client[] = [];
    for (const set of this.#byUser.values()) for (const c of set) all.push(c);
    this.#wake(all);
  }

  #wake(clients: Client[]): void {
    for (const c of clients) if (!c.closed) this.#dirty.add(c);
    if (this.#dirty.size === 0 || this.#pumping) return;
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
      if (this.#dirty.size) this.#wake([]);
    });
  }

  /** pump reads, for every woken stream, its rows past its last seq: one query per STREAMS_PER_QUERY streams. */
  async #pump(): Promise<void> {
    while (this.#dirty.size) {
      const batch = [...this.#dirty].slice(0, STREAMS_PER_QUERY);
      for (const c of batch) this.#dirty.delete(c);
      let rows: (NotificationRow & { i: string })[];
      try {
        rows = await this.#sql<(NotificationRow & { i: string })[]>`
          select c.i::text as i, n.id, n.seq::text as seq, n.type, n.title, n.message, n.data, n.created_at, n.read_at
          from unnest(${batch.map((c) => c.userId)}::uuid[], ${batch.map((c) => String(c.lastSeq))}::int8[]) with ordinality as c(user_id, after, i)
          cross join lateral (
            select * from notifications.notifications n
            where n.recipient_id = c.user_id and n.seq > c.after
            order by n.seq limit ${PAGE}
          ) n
          order by c.i, n.seq`;
      } catch (err) {
        this.#opts.onError?.(err, "read");
        return; // the next NOTIFY or heartbeat tries again
      }
      const counts = new Map<Client, number>();
      for (const r of rows) {
        const client = batch[Number(r.i) - 1]!;
        if (client.closed) continue;
        const seq = Number(r.seq);
        if (seq <= client.lastSeq) continue;
        client.lastSeq = seq;
        const view = toView(r);
        client.enqueue(() => client.sink.send(seq, view));
        counts.set(client, (counts.get(client) ?? 0) + 1);
      }
      // A full page: more may wait. Read on once this page is written, so a long replay goes at
      // the client's pace instead of piling up unsent writes.
      for (const [c, n] of counts) if (n >= PAGE && !c.closed) c.more = true;
    }
  }
}
