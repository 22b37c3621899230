import { DomainError } from "../src/errors.ts";

/**
 * StreamVersionConflictError: another writer appended to the stream first (HTTP 409). From
 * handleCommand, `attempts` says how many times it re-read and re-decided before giving up.
 */
export class StreamVersionConflictError extends DomainError {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly attempts = 1,
  ) {
    super(
      "EVENTS.CONCURRENCY_CONFLICT",
      "conflict",
      attempts > 1
        ? `stream ${streamId} kept changing concurrently (${attempts} attempts, last at version ${expectedVersion}); retry the request`
        : `stream ${streamId} was changed concurrently (expected version ${expectedVersion}); reload and retry`,
    );
  }
}

/**
 * DeliveryDeferredError is thrown by a batch handler (a sink) that could not deliver yet for a
 * reason that is not the events' fault: throttling, an outage, a network failure. The worker
 * does not count it as an attempt (so it never dead-letters anything), records it as the
 * partition's last error, and hands the same batch back after `retryInMs`.
 */
export class DeliveryDeferredError extends Error {
  constructor(
    message: string,
    readonly retryInMs: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DeliveryDeferredError";
  }
}

/** UnexpectedStreamEventError: a stream holds a type its reader does not list. A bug, not bad input. */
export class UnexpectedStreamEventError extends Error {
  constructor(
    readonly streamId: string,
    readonly version: number,
    readonly type: string,
    expected: readonly string[],
  ) {
    super(`stream ${streamId} holds "${type}" at version ${version}, which the reader does not list (${expected.join(", ")})`);
    this.name = "UnexpectedStreamEventError";
  }
}
