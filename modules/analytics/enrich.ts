/**
 * Enrichment of an accepted clickstream event: product metadata from the inventory read API
 * (cached, since a stream names the same products over and over) and the derived features the
 * course material's enrichment Lambda computes (time, value and device features; profit and
 * margin from the product's cost).
 */
import type { InventoryApi, Product } from "../inventory/index.ts";

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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * createProductCatalog reads products through the inventory read API and keeps each answer
 * (including "no such product") for `ttlMs`, at most `maxEntries` of them. Ids that cannot be a
 * catalog id (not a UUID) are never asked for.
 */
export function createProductCatalog(inventory: Pick<InventoryApi, "getProducts">, opts: { ttlMs?: number; maxEntries?: number } = {}): ProductCatalog {
  const ttlMs = opts.ttlMs ?? 60_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const cache = new Map<string, { at: number; info: ProductInfo | null }>();
  return {
    async lookup(ids) {
      const now = performance.now();
      const out = new Map<string, ProductInfo>();
      const missing: string[] = [];
      for (const id of new Set(ids)) {
        if (!UUID.test(id)) continue;
        const hit = cache.get(id);
        if (hit && now - hit.at < ttlMs) {
          if (hit.info) out.set(id, hit.info);
        } else missing.push(id);
      }
      if (missing.length === 0) return out;
      const found = new Map((await inventory.getProducts(missing)).map((p: Product) => [p.id, p]));
      for (const id of missing) {
        const p = found.get(id);
        const info = p ? { name: p.name, category: p.category, priceCents: p.priceCents, costCents: p.costCents } : null;
        // Insertion order is age order: drop the oldest entry when full.
        cache.delete(id);
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
        cache.set(id, { at: now, info });
        if (info) out.set(id, info);
      }
      return out;
    },
  };
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
 * deriveFeatures computes an event's features from its time, price, quantity, device and product.
 *
 * @example deriveFeatures(new Date("2026-12-05T10:00:00Z"), { priceCents: 15000, quantity: 2 }) // weekend, high value
 */
export function deriveFeatures(
  time: Date,
  e: { priceCents?: number | undefined; quantity?: number | undefined; deviceType?: string | undefined; priceFromCatalog?: boolean },
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
