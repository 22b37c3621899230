import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Outbox } from "../../outbox/index.ts";
import type { OutboxMetrics } from "../../outbox/types.ts";

/** createMetrics builds a Prometheus registry with the outbox's counters and a lag gauge read at scrape time. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labels = ["subscription", "partition"] as const;
  const processed = new Counter({ name: "outbox_events_processed_total", help: "Events handled by a subscription", labelNames: labels, registers: [registry] });
  const failed = new Counter({ name: "outbox_handler_failures_total", help: "Handler attempts that failed", labelNames: labels, registers: [registry] });
  const dead = new Counter({ name: "outbox_dead_letters_total", help: "Events sent to dead letters", labelNames: ["subscription"], registers: [registry] });
  const duration = new Histogram({
    name: "outbox_handler_duration_seconds",
    help: "Handler duration per event",
    labelNames: ["subscription"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const sinkSent = new Counter({
    name: "outbox_sink_entries_sent_total",
    help: "Entries accepted by a sink's target",
    labelNames: ["sink"],
    registers: [registry],
  });
  const sinkFailed = new Counter({
    name: "outbox_sink_entries_failed_total",
    help: "Entry attempts a sink's target refused, transiently or for good",
    labelNames: ["sink"],
    registers: [registry],
  });
  const sinkRetries = new Counter({
    name: "outbox_sink_retries_total",
    help: "Backoffs of a sink after a transient failure, by kind (throttled, transient, server, configuration, invalid-request, unknown)",
    labelNames: ["sink", "kind"],
    registers: [registry],
  });
  // Since when each sink's oldest undelivered entry has been failing; the age is taken at scrape time.
  const stalledSince = new Map<string, number | null>();
  new Gauge({
    name: "outbox_sink_stalled_seconds",
    help: "How long a sink's oldest undelivered entry has been failing (throttling, outage); 0 while it delivers",
    labelNames: ["sink"],
    registers: [registry],
    collect() {
      for (const [sink, since] of stalledSince) this.set({ sink }, since === null ? 0 : (Date.now() - since) / 1000);
    },
  });
  const lagEvents = new Gauge({ name: "outbox_subscription_lag_events", help: "Events past the checkpoint", labelNames: labels, registers: [registry] });
  const lagSeconds = new Gauge({
    name: "outbox_subscription_lag_seconds",
    help: "Age of the oldest unprocessed event",
    labelNames: labels,
    registers: [registry],
  });
  const held = new Gauge({
    name: "outbox_subscription_partition_held",
    help: "1 when this process holds the partition's lease",
    labelNames: labels,
    registers: [registry],
  });
  const members = new Gauge({
    name: "outbox_subscription_members",
    help: "Live processes sharing the subscription's partitions",
    labelNames: ["subscription"],
    registers: [registry],
  });

  const lateEvents = new Counter({
    name: "late_events",
    help: "Analytics events that came after their window's allowed lateness and were not applied",
    labelNames: ["aggregate"],
    registers: [registry],
  });

  const outbox: OutboxMetrics = {
    processed: (s, p, n) => processed.inc({ subscription: s, partition: String(p) }, n),
    failed: (s, p) => failed.inc({ subscription: s, partition: String(p) }),
    deadLettered: (s) => dead.inc({ subscription: s }),
    handlerDuration: (s, sec) => duration.observe({ subscription: s }, sec),
    sinkSent: (s, n) => sinkSent.inc({ sink: s }, n),
    sinkFailed: (s, n) => sinkFailed.inc({ sink: s }, n),
    sinkRetried: (s, kind) => sinkRetries.inc({ sink: s, kind }),
    sinkStalled: (s, since) => void stalledSince.set(s, since),
  };

  return {
    registry,
    outbox,
    /** lateEvents counts late analytics events per aggregate (the consumer reports them after each delivery). */
    lateEvents: (aggregate: string, n: number) => lateEvents.inc({ aggregate }, n),
    async render(o: Outbox) {
      for (const s of await o.status().catch(() => [])) {
        const l = { subscription: s.name, partition: String(s.partition) };
        lagEvents.set(l, s.lag.events);
        lagSeconds.set(l, s.lag.seconds);
        held.set(l, s.leaseOwner === o.processId ? 1 : 0);
        members.set({ subscription: s.name }, s.members.length);
      }
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
