/**
 * Enrichment of an accepted clickstream event: product metadata from the inventory read API and
 * the user's profile from the orders read API (both cached, since a stream names the same ids
 * over and over) and the derived features the
 * course material's enrichment Lambda computes (time, value and device features; profit and
 * margin from the product's cost).
 */
import type { InventoryApi, Product } from "../inventory/index.ts";
import { type CacheOptions, cachedLookup } from "./cache.ts";
import type { CustomerProfile, CustomerTier } from "./profiles.ts";

/** ProductInfo is what enrichment keeps of a catalog product. */
export interface ProductInfo {
  name: string;
  category: string;
  priceCents: number;
  costCents: number;
}

/** ProductCatalog answers product metadata by id, or nothing for an unknown id. */
export interface ProductCatalog {
  lookup(ids: readonly string[]): Promise<Map<string, ProductInfo>>;
}

/**
 * createProductCatalog reads products through the inventory read API and keeps each answer
 * (including "no such product") for `ttlMs` (default 60 s), at most `maxEntries` (10,000) of them.
 * Ids that cannot be a catalog id (not a UUID) are never asked for.
 */
export function createProductCatalog(inventory: Pick<InventoryApi, "getProducts">, opts: CacheOptions = {}): ProductCatalog {
  const lookup = cachedLookup<ProductInfo>(
    async (ids) =>
      new Map(
        (await inventory.getProducts(ids)).map((p: Product) => [
          p.id,
          { name: p.name, category: p.category, priceCents: p.priceCents, costCents: p.costCents },
        ]),
      ),
    opts,
  );
  return { lookup };
}

/** DeviceCategory is the coarse device class of an event. */
export type DeviceCategory = "MOBILE" | "TABLET" | "DESKTOP";

const MOBILE = new Set(["mobile", "smartphone", "iphone", "android"]);
const TABLET = new Set(["tablet", "ipad"]);

/** deviceCategory classes a device type as the course material does (anything else is a desktop). */
export function deviceCategory(deviceType: string | undefined): DeviceCategory {
  const d = (deviceType ?? "unknown").toLowerCase();
  return MOBILE.has(d) ? "MOBILE" : TABLET.has(d) ? "TABLET" : "DESKTOP";
}

/** HIGH_VALUE_CENTS: an event whose unit price is over this (100.00) is high value. */
export const HIGH_VALUE_CENTS = 10_000;

/** Features are the derived features stored with every event. */
export interface Features {
  /** Hour of the event time, 0-23, UTC. */
  hour: number;
  /** Day of the week of the event time, 0 (Sunday) to 6, UTC. */
  dayOfWeek: number;
  weekend: boolean;
  /** Monday to Friday, 09:00-17:59 UTC. */
  businessHours: boolean;
  highValue: boolean;
  deviceCategory: DeviceCategory;
  /** The user's tier from their lifetime value (see profiles.ts); BRONZE for a user without orders. */
  customerTier: CustomerTier;
  /** The user's orders placed and not cancelled, and the sum of their totals (cents). */
  totalOrders: number;
  lifetimeValueCents: number;
  /** From the catalog, when the product is known. */
  productName?: string;
  costCents?: number;
  /** (price - cost) x quantity, when the price and the product's cost are known. */
  profitCents?: number;
  /** (price - cost) / price x 100, rounded to 2 decimals (0 for a free item). */
  marginPercent?: number;
  /** The price came from the catalog because the event gave none. */
  priceFromCatalog?: boolean;
}

/**
 * deriveFeatures computes an event's features from its time, price, quantity, device, the user's
 * profile and the product.
 *
 * @example deriveFeatures(new Date("2026-12-05T10:00:00Z"), { priceCents: 15000, quantity: 2 }, NEW_CUSTOMER) // weekend, high value
 */
export function deriveFeatures(
  time: Date,
  e: { priceCents?: number | undefined; quantity?: number | undefined; deviceType?: string | undefined; priceFromCatalog?: boolean },
  profile: CustomerProfile,
  product?: ProductInfo,
): Features {
  const hour = time.getUTCHours();
  const dayOfWeek = time.getUTCDay();
  const weekend = dayOfWeek === 0 || dayOfWeek === 6;
  const f: Features = {
    hour,
    dayOfWeek,
    weekend,
    businessHours: !weekend && hour >= 9 && hour <= 17,
    highValue: (e.priceCents ?? 0) > HIGH_VALUE_CENTS,
    deviceCategory: deviceCategory(e.deviceType),
    customerTier: profile.tier,
    totalOrders: profile.totalOrders,
    lifetimeValueCents: profile.lifetimeValueCents,
  };
  if (product) {
    f.productName = product.name;
    f.costCents = product.costCents;
    if (e.priceCents !== undefined) {
      f.profitCents = (e.priceCents - product.costCents) * (e.quantity ?? 1);
      f.marginPercent = e.priceCents > 0 ? Math.round(((e.priceCents - product.costCents) / e.priceCents) * 10_000) / 100 : 0;
    }
  }
  if (e.priceFromCatalog) f.priceFromCatalog = true;
  return f;
}
