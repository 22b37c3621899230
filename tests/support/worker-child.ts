// A worker process for multi-process tests: runs one subscription against DB_URL and records
// effects tagged with WORKER. With KILL_AT=n it SIGKILLs itself inside the handler of event n,
// after writing that event's effect but before the transaction commits.
import { defineSubscription } from "../../outbox/index.ts";
import { recordEffect, startTestOutbox, TestHappened } from "./outbox.ts";

const worker = process.env.WORKER ?? "child";
const killAt = process.env.KILL_AT ? Number(process.env.KILL_AT) : undefined;
const delayMs = Number(process.env.HANDLER_DELAY_MS ?? 0);

const t = await startTestOutbox(
  process.env.DB_URL!,
  [
    defineSubscription({
      name: "testing.multi",
      on: [TestHappened],
      partitions: Number(process.env.PARTITIONS ?? 1),
      handler: async (e, { tx }) => {
        await recordEffect(tx, e, worker);
        if (e.data.n === killAt) process.kill(process.pid, "SIGKILL");
        if (delayMs) await Bun.sleep(delayMs);
      },
    }),
  ],
  {
    leaseSeconds: Number(process.env.LEASE_SECONDS ?? 2),
    pollMs: Number(process.env.POLL_MS ?? 100),
    processId: worker,
    batchSize: Number(process.env.BATCH ?? 100),
  },
);
console.log("ready");
process.on("SIGTERM", async () => {
  await t.close();
  process.exit(0);
});
