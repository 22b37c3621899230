import { describe, expect, it } from "bun:test";
import { cachedLookup } from "../../../modules/analytics/cache.ts";
import { createCustomerProfiles, customerTier, TIER_FLOORS_CENTS } from "../../../modules/analytics/profiles.ts";

const A = "0192d4a0-0000-7000-8000-00000000000a";
const B = "0192d4a0-0000-7000-8000-00000000000b";

describe("customerTier", () => {
  it("starts each tier at its floor", () => {
    expect(customerTier(0)).toBe("BRONZE");
    expect(customerTier(TIER_FLOORS_CENTS.SILVER - 1)).toBe("BRONZE");
    expect(customerTier(TIER_FLOORS_CENTS.SILVER)).toBe("SILVER");
    expect(customerTier(TIER_FLOORS_CENTS.GOLD - 1)).toBe("SILVER");
    expect(customerTier(TIER_FLOORS_CENTS.GOLD)).toBe("GOLD");
    expect(customerTier(TIER_FLOORS_CENTS.PLATINUM - 1)).toBe("GOLD");
    expect(customerTier(TIER_FLOORS_CENTS.PLATINUM)).toBe("PLATINUM");
    expect([TIER_FLOORS_CENTS.SILVER, TIER_FLOORS_CENTS.GOLD, TIER_FLOORS_CENTS.PLATINUM]).toEqual([50_000, 200_000, 1_000_000]);
  });
});

describe("createCustomerProfiles", () => {
  it("asks the orders read API once per user within the TTL, never for ids that are not UUIDs, and again after it", async () => {
    const asked: string[][] = [];
    const histories = new Map([[A, { orderCount: 3, lifetimeCents: 250_000 }]]);
    const profiles = createCustomerProfiles(
      {
        getCustomerHistories: async (ids) => {
          asked.push([...ids]);
          return ids.map((customerId) => ({ customerId, orderCount: 0, lifetimeCents: 0, ...histories.get(customerId) }));
        },
      },
      { ttlMs: 50 },
    );
    const first = await profiles.lookup([A, B, "anonymous", A]);
    expect(Object.fromEntries(first)).toEqual({ [A]: { tier: "GOLD", totalOrders: 3, lifetimeValueCents: 250_000 } });
    await profiles.lookup([A, B]);
    expect(asked).toEqual([[A, B]]);
    histories.set(A, { orderCount: 4, lifetimeCents: 1_000_000 });
    await Bun.sleep(60);
    expect((await profiles.lookup([A])).get(A)).toEqual({ tier: "PLATINUM", totalOrders: 4, lifetimeValueCents: 1_000_000 });
    expect(asked).toEqual([[A, B], [A]]);
  });
});

describe("cachedLookup", () => {
  it("keeps at most maxEntries answers, dropping the oldest", async () => {
    const loads: string[][] = [];
    const ids: string[] = Array.from({ length: 3 }, (_, i) => `0192d4a0-0000-7000-8000-00000000000${i}`);
    const lookup = cachedLookup(
      async (missing) => {
        loads.push(missing);
        return new Map(missing.map((id) => [id, id.length]));
      },
      { maxEntries: 2 },
    );
    await lookup([ids[0]!, ids[1]!]);
    await lookup([ids[2]!]);
    await lookup([ids[1]!, ids[2]!]);
    await lookup([ids[0]!]);
    expect(loads).toEqual([ids.slice(0, 2), ids.slice(2), ids.slice(0, 1)]);
  });
});
