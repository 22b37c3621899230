import type { EventEnvelope } from "../envelope.ts";
import type { CompiledPattern } from "../pattern.ts";
import { type EventRow, toEnvelope } from "../store.ts";

/**
 * StartSnapshot is the snapshot a `startFrom: "now"` subscription was created in
 * (`xmin:xmax:xip,...`). Its checkpoint starts at `xmin`, below every transaction then in flight,
 * so their events are delivered; the events of transactions it shows as committed were in the
 * log before the subscription and are skipped. Past `xmax` it has nothing more to say.
 */
class StartSnapshot {
  readonly xmax: bigint;
  readonly #xmin: bigint;
  readonly #inFlight: ReadonlySet<bigint>;

  constructor(readonly text: string) {
    const [xmin, xmax, xip = ""] = text.split(":");
    this.#xmin = BigInt(xmin!);
    this.xmax = BigInt(xmax!);
    this.#inFlight = new Set(xip ? xip.split(",").map(BigInt) : []);
  }

  /** committedBefore says whether a transaction had committed when the snapshot was taken. */
  committedBefore(transactionId: string): boolean {
    const t = BigInt(transactionId);
    return t < this.#xmin || (t < this.xmax && !this.#inFlight.has(t));
  }
}

/**
 * EventFilter says which rows of a batch a subscription handles: those its pattern matches
 * (SQL already kept only its types and partition) that came after its start.
 */
export class EventFilter {
  #start: StartSnapshot | undefined;

  constructor(private readonly matcher: CompiledPattern) {}

  /** noteStart keeps the start snapshot while the checkpoint is below its `xmax` (replay clears it). */
  noteStart(cp: { start_snapshot: string | null; last_transaction_id: string }): void {
    const text = cp.start_snapshot;
    if (!text) this.#start = undefined;
    else if (this.#start?.text !== text) this.#start = new StartSnapshot(text);
    if (this.#start && BigInt(cp.last_transaction_id) >= this.#start.xmax) this.#start = undefined;
  }

  /** wants says whether this subscription handles `row`: it matches, and it came after the start. */
  wants(row: EventRow, env: EventEnvelope): boolean {
    if (this.#start?.committedBefore(row.transaction_id)) return false;
    return this.matcher.matches(env);
  }

  /** matching is the envelopes of the rows in `batch` this subscription handles. */
  matching(batch: readonly EventRow[]): EventEnvelope[] {
    const out: EventEnvelope[] = [];
    for (const row of batch) {
      const env = toEnvelope(row);
      if (this.wants(row, env)) out.push(env);
    }
    return out;
  }
}
