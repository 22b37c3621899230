import { describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { cancellationReason, type Draft } from "../../../modules/notifications/sources.ts";
import { prepare } from "../../../modules/notifications/store.ts";
import { payloads } from "../../../modules/notifications/stream/index.ts";

const cancelled = (reason: string, actorid?: string, extra: Record<string, unknown> = {}) => {
  const customerId = "0192f0c1-0000-7000-8000-000000000001";
  return {
    id: randomUUIDv7(),
    type: "order.cancelled",
    actorid,
    data: { orderId: randomUUIDv7(), customerId, reason, previousStatus: "PENDING", ...extra },
  } as never as Parameters<typeof cancellationReason>[0];
};
const CUSTOMER = "0192f0c1-0000-7000-8000-000000000001";

describe("cancellation reasons in words", () => {
  it.each([
    ["out of stock: p1 (requested 5, available 2)", "out_of_stock", "out of stock"],
    ["insufficient_stock", "out_of_stock", "out of stock"],
    ["a product in the order no longer exists", "product_unavailable", "a product is no longer available"],
    ["card_declined", "card_declined", "card declined"],
    ["payment failed: card declined", "card_declined", "card declined"],
    ["insufficient_funds", "insufficient_funds", "card declined (insufficient funds)"],
    ["payment_timeout", "payment_timed_out", "payment timed out"],
    ["payment timed out after 30 s", "payment_timed_out", "payment timed out"],
    ["payment failed", "payment_failed", "payment failed"],
  ])("maps %p to %p", (reason, code, words) => {
    expect(cancellationReason(cancelled(reason, CUSTOMER))).toEqual({ code, words } as never);
  });

  it("takes a reason code over the text when the event carries one", () => {
    expect(cancellationReason(cancelled("whatever the text says", CUSTOMER, { reasonCode: "card_declined" })).code).toBe("card_declined");
  });

  it("tells a customer's own cancellation from the shop's by the event's actor", () => {
    expect(cancellationReason(cancelled("changed my mind", CUSTOMER))).toEqual({ code: "customer_cancelled", words: "customer cancelled" });
    expect(cancellationReason(cancelled("fraud suspected", randomUUIDv7())).code).toBe("cancelled_by_shop");
    expect(cancellationReason(cancelled("no idea")).code).toBe("other");
  });
});

describe("drafts before storing", () => {
  const cause = (id = randomUUIDv7()) => ({ id }) as Draft["cause"];
  const draft = (c: Draft["cause"], recipientId: string, type: string, actorId?: string): Draft => ({
    cause: c,
    recipientId,
    type,
    title: type,
    message: type,
    data: {},
    ...(actorId ? { actorId } : {}),
  });

  it("drops one's own actions, keeps the first draft per (cause, recipient), and sorts by recipient then cause", () => {
    const [a, b] = [randomUUIDv7(), randomUUIDv7()].sort() as [string, string];
    const e1 = cause();
    const e2 = cause();
    const rank = new Map([
      [e1.id, 0],
      [e2.id, 1],
    ]);
    const out = prepare(
      [draft(e2, b, "post_replied", a), draft(e2, b, "new_post", a), draft(e1, a, "new_post", a), draft(e1, b, "new_follower"), draft(e2, a, "post_liked", b)],
      (c) => rank.get(c.id)!,
    );
    expect(out.map((d) => [d.recipientId, d.cause.id, d.type])).toEqual([
      [a, e2.id, "post_liked"],
      [b, e1.id, "new_follower"],
      [b, e2.id, "post_replied"],
    ]);
  });
});

describe("NOTIFY payloads", () => {
  it("names recipients in payloads under Postgres's 8,000-byte limit, or says '*' when there are too many", () => {
    expect(payloads([])).toEqual([]);
    const ids = Array.from({ length: 1500 }, () => randomUUIDv7());
    const out = payloads(ids);
    expect(out.length).toBeGreaterThan(1);
    for (const p of out) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    expect(out.flatMap((p) => p.split(","))).toEqual(ids);
    expect(payloads(Array.from({ length: 2001 }, () => randomUUIDv7()))).toEqual(["*"]);
  });
});
