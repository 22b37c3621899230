import { describe, expect, it } from "bun:test";
import { discardDeadLetter, listDeadLetters, replay, requestRedrive } from "../../outbox/admin.ts";
import { defineSubscription } from "../../outbox/index.ts";
import { eventually } from "../support/eventually.ts";
import { outboxTestFile, recordEffect, TestHappened, type TestOutbox } from "../support/outbox.ts";

const tdb = outboxTestFile();
let current: TestOutbox | undefined;

describe("dead letters", () => {
  it("parks a poison event after maxAttempts while later events flow, then redrives it once fixed", async () => {
    let fixed = false;
    let attempts = 0;
    current = await tdb.start([
      defineSubscription({
        name: "testing.poison",
        on: [TestHappened],
        maxAttempts: 3,
        backoff: { baseMs: 5, maxMs: 20 },
        handler: async (e, { tx }) => {
          if (e.data.n === 5 && !fixed) {
            attempts++;
            throw new Error("cannot handle n=5");
          }
          await recordEffect(tx, e);
        },
      }),
    ]);
    await current.append(Array.from({ length: 10 }, (_, i) => current!.happened(i)));
    await eventually(async () => (await current!.effects()).length === 9);
    expect(attempts).toBe(3);
    expect((await current.effects()).map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9]);

    const [dl] = await listDeadLetters(current.database.db, { subscription: "testing.poison", limit: 10 });
    expect(dl).toMatchObject({ subscription: "testing.poison", status: "dead", attempts: 3, error: "Error: cannot handle n=5" });
    expect(dl!.event.data).toEqual({ n: 5 });
    expect(Date.parse(dl!.firstFailedAt)).toBeLessThanOrEqual(Date.parse(dl!.lastFailedAt));

    // Later events keep flowing past the parked one.
    await current.append([current.happened(10)]);
    await eventually(async () => (await current!.effects()).length === 10);

    fixed = true;
    await requestRedrive(current.database.db, dl!.id);
    current.outbox.wake();
    await eventually(async () => (await current!.effects()).some((r) => r.n === 5));
    const [after] = await listDeadLetters(current.database.db, { subscription: "testing.poison", limit: 10 });
    expect(after!.status).toBe("redriven");
    await Bun.sleep(300);
    expect((await current.effects()).filter((r) => r.n === 5)).toHaveLength(1);
  });

  it("keeps a dead letter dead when redrive fails again, and discards it", async () => {
    current = await tdb.start([
      defineSubscription({
        name: "testing.always-fails",
        on: [TestHappened],
        maxAttempts: 1,
        handler: async () => {
          throw new Error("nope");
        },
      }),
    ]);
    await current.append([current.happened(1)]);
    const [dl] = await eventually(async () => {
      const l = await listDeadLetters(current!.database.db, { limit: 10 });
      return l.length === 1 && l;
    });
    await requestRedrive(current.database.db, dl!.id);
    current.outbox.wake();
    await eventually(async () => {
      const [d] = await listDeadLetters(current!.database.db, { limit: 10 });
      return d!.status === "dead" && d!.attempts === 2;
    });
    await discardDeadLetter(current.database.db, dl!.id);
    expect(await listDeadLetters(current.database.db, { limit: 10 })).toEqual([]);
    await expect(discardDeadLetter(current.database.db, dl!.id)).rejects.toThrow("not found");
  });
});

describe("replay", () => {
  it("redelivers exactly the events from a position, and from a time", async () => {
    current = await tdb.start([defineSubscription({ name: "testing.record", on: [TestHappened], handler: (e, { tx }) => recordEffect(tx, e) })]);
    await current.append(Array.from({ length: 10 }, (_, i) => current!.happened(i + 1)));
    await eventually(async () => (await current!.effects()).length === 10);

    const res = await replay(current.database.db, "testing.record", { position: "7" });
    expect(res.fromPosition).toBe("7");
    current.outbox.wake();
    await eventually(async () => (await current!.effects()).length === 14);
    expect((await current.effects()).slice(10).map((r) => r.n)).toEqual([7, 8, 9, 10]);

    // Events appended a measurable time apart, then replay from the boundary between them.
    await Bun.sleep(20);
    const boundary = new Date().toISOString();
    await Bun.sleep(20);
    await current.append([current.happened(11), current.happened(12)]);
    await eventually(async () => (await current!.effects()).length === 16);
    await replay(current.database.db, "testing.record", { time: boundary });
    current.outbox.wake();
    await eventually(async () => (await current!.effects()).length === 18);
    expect((await current.effects()).slice(16).map((r) => r.n)).toEqual([11, 12]);
    await Bun.sleep(300);
    expect((await current.effects()).length).toBe(18);
  });

  it("parks the checkpoint at the end when nothing is that new", async () => {
    current = await tdb.start([defineSubscription({ name: "testing.record", on: [TestHappened], handler: (e, { tx }) => recordEffect(tx, e) })]);
    await current.append([current.happened(1)]);
    await eventually(async () => (await current!.effects()).length === 1);
    expect(await replay(current.database.db, "testing.record", { position: "999" })).toEqual({ fromPosition: null });
    await expect(replay(current.database.db, "testing.nope", { position: "1" })).rejects.toThrow("not found");
  });
});
