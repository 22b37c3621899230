/**
 * User profile enrichment: a user's tier and order history, read through the orders module's
 * read API (`getCustomerHistories`, one primary-key lookup per customer in the orders read
 * model) and cached like the catalog's products.
 *
 * The course material (`shared/seeds/002_*`) reads `customerTier`, `totalOrders` and
 * `lifetimeValue` from a user table and gives a user it does not know `BRONZE` with no orders;
 * it never says where the tiers start. Ours, by lifetime value (the totals of the orders placed
 * and not cancelled, in USD):
 *
 * | tier     | lifetime value      |
 * | -------- | ------------------- |
 * | BRONZE   | under 500           |
 * | SILVER   | 500 to under 2,000  |
 * | GOLD     | 2,000 to under 10,000 |
 * | PLATINUM | 10,000 and over     |
 */
import type { OrdersApi } from "../orders/index.ts";
import { type CacheOptions, cachedLookup } from "./cache.ts";

/** CustomerTier is a user's tier by lifetime value. */
export type CustomerTier = "BRONZE" | "SILVER" | "GOLD" | "PLATINUM";

/** TIER_FLOORS_CENTS: the lifetime value (cents) at which each tier above BRONZE starts. */
export const TIER_FLOORS_CENTS = { SILVER: 50_000, GOLD: 200_000, PLATINUM: 1_000_000 } as const;

/**
 * customerTier gives the tier of a lifetime value in cents.
 *
 * @example customerTier(250_000) // "GOLD"
 */
export function customerTier(lifetimeCents: number): CustomerTier {
  if (lifetimeCents >= TIER_FLOORS_CENTS.PLATINUM) return "PLATINUM";
  if (lifetimeCents >= TIER_FLOORS_CENTS.GOLD) return "GOLD";
  if (lifetimeCents >= TIER_FLOORS_CENTS.SILVER) return "SILVER";
  return "BRONZE";
}

/** CustomerProfile is what enrichment keeps of a user's history. */
export interface CustomerProfile {
  tier: CustomerTier;
  totalOrders: number;
  lifetimeValueCents: number;
}

/** NEW_CUSTOMER is the profile of a user without orders (or whose id is not a customer's): BRONZE, as in the course material. */
export const NEW_CUSTOMER: CustomerProfile = Object.freeze({ tier: "BRONZE", totalOrders: 0, lifetimeValueCents: 0 });

/** CustomerProfiles answers the profiles of the users asked who have orders; the others are NEW_CUSTOMER. */
export interface CustomerProfiles {
  lookup(userIds: readonly string[]): Promise<Map<string, CustomerProfile>>;
}

/**
 * createCustomerProfiles reads users' histories through the orders read API and keeps each
 * answer for `ttlMs` (default 60 s: a new order shows in the tier within a minute), at most
 * `maxEntries` (10,000). User ids that are not UUIDs (anonymous ids) are never asked for; they,
 * and users without orders, are missing from the answer (NEW_CUSTOMER).
 */
export function createCustomerProfiles(orders: Pick<OrdersApi, "getCustomerHistories">, opts: CacheOptions = {}): CustomerProfiles {
  const lookup = cachedLookup<CustomerProfile>(async (ids) => {
    const out = new Map<string, CustomerProfile>();
    for (const h of await orders.getCustomerHistories(ids))
      if (h.orderCount > 0 || h.lifetimeCents > 0)
        out.set(h.customerId, { tier: customerTier(h.lifetimeCents), totalOrders: h.orderCount, lifetimeValueCents: h.lifetimeCents });
    return out;
  }, opts);
  return { lookup };
}
