/**
 * A small read-through cache for enrichment's lookups by id (catalog products, customer
 * histories): a stream names the same ids over and over, so each answer, "none" included, is kept
 * for a while instead of being asked for on every request.
 */

/** UUID matches an id the other modules could know (their ids are UUIDs): others are never asked for. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** CacheOptions bound a cache: how long an answer is kept (default 60 s) and how many (default 10,000). */
export interface CacheOptions {
  ttlMs?: number;
  maxEntries?: number;
}

/**
 * cachedLookup wraps `load` (which answers the ids it knows; an id missing from its answer is
 * "none") so that each id's answer is kept for `ttlMs`, at most `maxEntries` of them, the oldest
 * dropped first. Ids that are not UUIDs are never loaded and answer nothing.
 *
 * @example const lookup = cachedLookup((ids) => loadProducts(ids)); const found = await lookup(["0190…"]);
 */
export function cachedLookup<V>(
  load: (ids: string[]) => Promise<Map<string, V>>,
  opts: CacheOptions = {},
): (ids: readonly string[]) => Promise<Map<string, V>> {
  const ttlMs = opts.ttlMs ?? 60_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const cache = new Map<string, { at: number; value: V | null }>();
  return async (ids) => {
    const now = performance.now();
    const out = new Map<string, V>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      if (!UUID.test(id)) continue;
      const hit = cache.get(id);
      if (hit && now - hit.at < ttlMs) {
        if (hit.value !== null) out.set(id, hit.value);
      } else missing.push(id);
    }
    if (missing.length === 0) return out;
    const found = await load(missing);
    for (const id of missing) {
      const value = found.get(id) ?? null;
      // Insertion order is age order: drop the oldest entry when full.
      cache.delete(id);
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      cache.set(id, { at: now, value });
      if (value !== null) out.set(id, value);
    }
    return out;
  };
}
