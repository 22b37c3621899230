export { fullJitterDelay } from "../backoff.ts";
export { errorText } from "../error-text.ts";

/** DEFAULT_MAX_RETRIES is how often a sink resends an entry before giving the batch back to the worker. */
export const DEFAULT_MAX_RETRIES = 5;

/** DEFAULT_BASE_DELAY_MS is the first backoff ceiling; it doubles per retry. */
export const DEFAULT_BASE_DELAY_MS = 100;

/** DEFAULT_MAX_DELAY_MS caps one backoff so a sink never sleeps past the worker's lease. */
export const DEFAULT_MAX_DELAY_MS = 5_000;

/** sleep resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Names the AWS SDK and Node use for throttling and transient faults of a whole call.
const RETRYABLE_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestThrottled",
  "RequestThrottledException",
  "RequestLimitExceeded",
  "ProvisionedThroughputExceededException",
  "LimitExceededException",
  "KMSThrottlingException",
  "InternalFailure",
  "InternalException",
  "InternalServerError",
  "InternalServiceError",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** errorName returns the AWS error code (or Node error code) of a thrown value, for logs and classification. */
export function errorName(err: unknown): string {
  if (typeof err !== "object" || err === null) return String(err);
  const e = err as SdkErrorShape;
  if (typeof e.code === "string" && RETRYABLE_NAMES.has(e.code)) return e.code;
  return typeof e.name === "string" ? e.name : "Error";
}

// Validation, missing bus/stream and access errors are not here: they are configuration problems
// that resending cannot fix, so they should reach the worker (and the operator) at once.
/** isRetryableCallError says whether a whole failed call (throttling, 5xx, timeout, network) may succeed if resent. */
export function isRetryableCallError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as SdkErrorShape;
  if (e.$retryable) return true;
  if (RETRYABLE_NAMES.has(errorName(err))) return true;
  const status = e.$metadata?.httpStatusCode;
  return status === 429 || (typeof status === "number" && status >= 500);
}
