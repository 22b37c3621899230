export { fullJitterDelay } from "../backoff.ts";
export { errorText } from "../error-text.ts";

/** DEFAULT_BASE_DELAY_MS is the first backoff ceiling; it doubles per retry. */
export const DEFAULT_BASE_DELAY_MS = 100;

/** DEFAULT_MAX_DELAY_MS caps one backoff, however long the failure lasts. */
export const DEFAULT_MAX_DELAY_MS = 5_000;
/**
 * The longest one AWS call may take before it fails over to the sink's retry. Below the
 * partition lease (15 s by default), so a hung call cannot outlast the lease: the sink hands the
 * batch back and the worker renews its lease before another process could take the partition
 * over and send the same entries alongside.
 */
export const AWS_REQUEST_TIMEOUT_MS = 10_000;

/** sleep resolves after `ms` milliseconds, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * FailureKind sorts a failed AWS call by cause, for logs and metrics. Whatever the kind, the sink
 * resends: none of them says anything about the events themselves (see `failureKind`).
 */
export type FailureKind = "throttled" | "transient" | "server" | "configuration" | "invalid-request" | "unknown";

// The names and codes below are those the AWS SDK's own retry strategy treats as throttling and
// transient faults (@smithy service-error-classification: THROTTLING_ERROR_CODES,
// TRANSIENT_ERROR_CODES, NODEJS_TIMEOUT_ERROR_CODES, NODEJS_NETWORK_ERROR_CODES), plus the
// throttling and internal errors the EventBridge and Kinesis API references list for PutEvents
// and PutRecords (KMSThrottlingException, InternalFailure, InternalException, ServiceUnavailable).
const THROTTLING = new Set([
  "BandwidthLimitExceeded",
  "LimitExceededException",
  "PriorRequestNotComplete",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "ThrottledException",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "KMSThrottlingException",
]);
const TRANSIENT = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalFailure",
  "InternalException",
  "InternalServerError",
  "InternalServiceError",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
// Refusals an operator fixes (credentials, IAM or KMS key policy, a missing bus or stream, a
// skewed clock): the events are fine and will be accepted once that is done.
const CONFIGURATION = new Set([
  "AccessDeniedException",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "ExpiredTokenException",
  "MissingAuthenticationTokenException",
  "IncompleteSignature",
  "RequestExpired",
  "ResourceNotFoundException",
  "InvalidAccountIdException",
  "NotAuthorizedForSourceException",
  "NotAuthorizedForDetailTypeException",
  "KMSAccessDeniedException",
  "KMSDisabledException",
  "KMSInvalidStateException",
  "KMSNotFoundException",
  "KMSOptInRequired",
  "CredentialsProviderError",
]);
// The whole request was refused as malformed. The sinks check every documented limit before
// sending, so this points at a limit they do not know of (or a misconfigured name), not at an
// event they could identify.
const INVALID_REQUEST = new Set(["ValidationException", "ValidationError", "InvalidArgumentException", "InvalidParameterException", "SerializationException"]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** errorName returns the AWS error code (or Node error code) of a thrown value, for logs and classification. */
export function errorName(err: unknown): string {
  if (typeof err !== "object" || err === null) return String(err);
  const e = err as SdkErrorShape;
  // Node puts the socket error in `code` (ECONNRESET); the SDK puts the AWS error code in `name`.
  if (typeof e.code === "string" && /^E[A-Z_]+$/.test(e.code)) return e.code;
  return typeof e.name === "string" ? e.name : "Error";
}

/**
 * failureKind classifies a failed call as the AWS SDK would. The sinks resend after every kind
 * (an unknown error counts as transient: an event is never given up because the call failed);
 * the kind only says who can end the failure: time (throttled, transient, server), an operator
 * (configuration, invalid-request), or nobody knows (unknown).
 */
export function failureKind(err: unknown, depth = 0): FailureKind {
  if (typeof err !== "object" || err === null) return "unknown";
  const e = err as SdkErrorShape;
  const name = errorName(err);
  const status = e.$metadata?.httpStatusCode;
  if (THROTTLING.has(name) || status === 429 || e.$retryable?.throttling) return "throttled";
  if (TRANSIENT.has(name) || e.$retryable || status === 500 || status === 502 || status === 503 || status === 504) return "transient";
  if (CONFIGURATION.has(name) || status === 401 || status === 403) return "configuration";
  if (INVALID_REQUEST.has(name)) return "invalid-request";
  if (typeof status === "number" && status >= 500) return "server";
  // Network errors often arrive wrapped ("socket hang up" around ECONNRESET).
  if (e.cause !== undefined && depth < 5) {
    const inner = failureKind(e.cause, depth + 1);
    if (inner !== "unknown") return inner;
  }
  return "unknown";
}
