/** The analytics benchmark's generated events (shared by bench/analytics.ts and its client process). */

const TYPES = ["page_view", "page_view", "add_to_cart", "search", "purchase"] as const;
const CATEGORIES = ["books", "electronics", "home", "toys"];

/** batchOf makes `n` events timed around now (so none is late). */
export function batchOf(n: number, seed: number): Record<string, unknown>[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const k = seed * 7919 + i;
    const eventType = TYPES[k % TYPES.length]!;
    const user = `u-${k % 5000}`;
    const e: Record<string, unknown> = {
      userId: user,
      sessionId: `${user}-s`,
      eventType,
      deviceType: k % 3 ? "mobile" : "desktop",
      clientTime: new Date(now - (k % 1000)).toISOString(),
    };
    if (eventType === "purchase" || eventType === "add_to_cart") {
      Object.assign(e, {
        productId: `p-${k % 200}`,
        category: CATEGORIES[k % 4],
        price: (k % 20_000) / 100,
        quantity: 1 + (k % 3),
        location: { country: "US", region: "CA" },
      });
    }
    if (eventType === "search") e.query = "lamp";
    return e;
  });
}
