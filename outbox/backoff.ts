// Full jitter (not equal or decorrelated) spreads the retries of many workers that failed at the
// same moment (a throttled bus or shard, a database restart), so they do not come back in
// lockstep. One function for the worker's retries and the sinks' resends.

/**
 * fullJitterDelay is exponential backoff with full jitter: a whole number of milliseconds drawn
 * uniformly from [0, min(maxMs, baseMs * 2^(attempt-1))].
 */
export function fullJitterDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
