import { DomainError } from "../src/errors.ts";

/** StreamVersionConflictError: another writer appended to the stream first (HTTP 409). */
export class StreamVersionConflictError extends DomainError {
  constructor(readonly streamId: string, readonly expectedVersion: number) {
    super("EVENTS.CONCURRENCY_CONFLICT", "conflict", `stream ${streamId} was changed concurrently (expected version ${expectedVersion}); reload and retry`);
  }
}
