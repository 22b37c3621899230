import { DomainError, NotFoundError, UnauthorizedError, ValidationError } from "../../src/platform.ts";

/** IngestKeyRequiredError: an anonymous request without a valid ingestion key (or with ingestion by key switched off). */
export class IngestKeyRequiredError extends UnauthorizedError {
  constructor(configured: boolean) {
    super(
      configured
        ? "send a bearer token, or the ingestion key in x-api-key"
        : "anonymous ingestion is off (no ingestion key is configured): send a bearer token",
      "ANALYTICS.INGEST_KEY_REQUIRED",
    );
  }
}

/** BadBatchError: the body is neither one event nor `{events: [...]}` with at least one event. */
export class BadBatchError extends ValidationError {
  constructor(message: string) {
    super(message, [{ path: "body", message }], "ANALYTICS.BAD_BATCH");
  }
}

/** BatchTooLargeError: more events in one request than the limit (a 413). */
export class BatchTooLargeError extends DomainError {
  constructor(max: number, got: number) {
    super("ANALYTICS.BATCH_TOO_LARGE", "too_large", `at most ${max} events per request; this one has ${got}`);
  }
}

/** FeaturesNotFoundError: another user's features (only the user and admins see them: for anyone else they do not exist). */
export class FeaturesNotFoundError extends NotFoundError {
  constructor() {
    super("user features", "ANALYTICS.FEATURES_NOT_FOUND");
  }
}

/** FeatureStoreUnavailableError: the feature store did not answer (DynamoDB throttled, timed out or unreachable); retry shortly. */
export class FeatureStoreUnavailableError extends DomainError {
  constructor(reason: string) {
    super("ANALYTICS.FEATURE_STORE_UNAVAILABLE", "unavailable", `the feature store did not answer (${reason}); retry shortly`, {
      headers: { "retry-after": "5" },
    });
  }
}
