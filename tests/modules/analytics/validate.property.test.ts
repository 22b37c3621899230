import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { ClickEventSchema, quickParse, validateEvents } from "../../../modules/analytics/validate.ts";

// quickParse is a shortcut for zod's answer to a valid event; zod stays the rule. For any input,
// valid or not, the shortcut either declines (undefined: zod decides) or gives exactly what zod gives.

// Text that is often valid and sometimes not: empty, blank, too long, control and bidi characters,
// lone surrogates, padding that trim removes.
const tricky = fc.oneof(
  fc.constantFrom("", " ", "  x  ", "a\u0000b", "a\u202Eb", "\uD800", "é", "\t\n", "ok", "\u00A0x\u00A0", "x\u2028"),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.integer({ min: 0, max: 600 }).map((n) => "x".repeat(n)),
);
const anyValue = fc.oneof(tricky, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
// Mostly a plausible value, sometimes anything; absent (the records' keys are optional) as often as not.
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 30, arbitrary: arb }, { weight: 1, arbitrary: anyValue });
const plain = fc.string({ minLength: 1, maxLength: 20 });
const dates = fc.oneof(
  fc.date({ min: new Date("1990-01-01"), max: new Date("2040-01-01"), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    "2026-12-03T10:00:00+02:00",
    "2026-12-03T10:00:00Z",
    "2026-12-03T10:00:00.123456Z",
    "2026-12-03 10:00:00Z",
    "2026-02-30T00:00:00Z",
    "2028-02-29T23:59:59-05:30",
  ),
);
const uuids = fc.oneof(fc.uuid(), fc.constantFrom("00000000-0000-0000-0000-000000000000", "0190ABCD-1234-7ABC-8DEF-0123456789AB", "not-a-uuid"));

const event = fc.record(
  {
    eventId: maybe(uuids),
    userId: maybe(fc.oneof(fc.constantFrom("u-1", " u-2 "), plain)),
    sessionId: maybe(fc.oneof(fc.constant("s-1"), plain)),
    eventType: maybe(fc.constantFrom("page_view", "add_to_cart", "purchase", "search")),
    productId: maybe(fc.oneof({ weight: 10, arbitrary: plain }, { weight: 1, arbitrary: tricky })),
    category: maybe(fc.oneof({ weight: 10, arbitrary: plain }, { weight: 1, arbitrary: tricky })),
    price: maybe(fc.oneof(fc.double({ min: -1, max: 10_000_001 }), fc.constantFrom(0, -0, 10_000_000, 12.5))),
    quantity: maybe(fc.oneof(fc.integer({ min: -2, max: 1002 }), fc.double({ min: 0, max: 5 }))),
    deviceType: maybe(fc.oneof({ weight: 10, arbitrary: plain }, { weight: 1, arbitrary: tricky })),
    location: maybe(
      fc.oneof(fc.record({ country: plain, region: plain }), fc.record({ country: anyValue, region: anyValue, extra: anyValue }, { requiredKeys: [] })),
    ),
    query: maybe(fc.oneof({ weight: 10, arbitrary: plain }, { weight: 1, arbitrary: tricky })),
    clientTime: maybe(dates),
    unknownField: maybe(anyValue),
  },
  { requiredKeys: ["userId", "sessionId", "eventType"] },
);
// Now and then a required field is missing too.
const events = fc.oneof({ weight: 9, arbitrary: event }, { weight: 1, arbitrary: fc.record({ userId: plain, eventType: plain }, { requiredKeys: [] }) });

describe("quickParse", () => {
  it("gives zod's output for every event it takes, and takes no event zod refuses", () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: events }, { weight: 1, arbitrary: anyValue }), (raw) => {
        const quick = quickParse(raw);
        const zod = ClickEventSchema.safeParse(raw);
        if (quick === undefined) return;
        taken++;
        expect(zod.success).toBe(true);
        expect(quick).toStrictEqual(zod.data!);
      }),
      { numRuns: 20_000 },
    );
    // The shortcut is only worth having if it takes the ordinary events.
    expect(taken).toBeGreaterThan(1000);
  });

  it("takes an ordinary valid event", () => {
    const e = {
      eventId: "0190abcd-1234-7abc-8def-0123456789ab",
      userId: " u-1 ",
      sessionId: "s",
      eventType: "purchase",
      price: 12.5,
      quantity: 2,
      location: { country: "US", region: "CA", x: 1 },
      clientTime: "2026-12-03T10:00:00.000Z",
      other: true,
    };
    expect(quickParse(e)).toStrictEqual(ClickEventSchema.parse(e));
  });

  it("leaves validateEvents' answers for a mixed batch as zod's", () => {
    const now = new Date("2026-12-03T10:00:00Z");
    const raw = [
      { userId: "u", sessionId: "s", eventType: "page_view" },
      { userId: "u", sessionId: "s", eventType: "refund" },
      { userId: "", sessionId: "s", eventType: "search", quantity: 0 },
    ];
    const { valid, rejected } = validateEvents(raw, { kind: "key" }, now);
    expect(valid.map((v) => v.index)).toEqual([0]);
    expect(rejected).toEqual([
      {
        index: 1,
        errors: ClickEventSchema.safeParse(raw[1]).error!.issues.map((i) => ({ path: i.path.join(".") || "(event)", message: i.message, code: i.code })),
      },
      {
        index: 2,
        errors: ClickEventSchema.safeParse(raw[2]).error!.issues.map((i) => ({ path: i.path.join(".") || "(event)", message: i.message, code: i.code })),
      },
    ]);
  });
});
