/**
 * within resolves or rejects as `promise` does, or rejects with "<what> did not settle within
 * <ms> ms": a hang becomes a failing assertion instead of a test that waits out the suite's
 * timeout.
 *
 * @example await within(db.transaction(fn), 5_000, "the transaction");
 */
export function within<T>(promise: Promise<T>, ms: number, what = "the operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
