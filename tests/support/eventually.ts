/**
 * eventually polls `probe` until it returns without throwing (and, when it returns a boolean,
 * returns true), or fails with the last error after `timeoutMs`. Use it for eventual effects
 * instead of a fixed sleep.
 */
export async function eventually<T>(probe: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 20): Promise<Exclude<T, false>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== false) return v as Exclude<T, false>;
      last = new Error("probe returned false");
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw last instanceof Error ? last : new Error(String(last));
    await Bun.sleep(intervalMs);
  }
}
