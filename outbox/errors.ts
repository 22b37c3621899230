import { DomainError } from "../src/errors.ts";

/** StreamVersionConflictError: another writer appended to the stream first (HTTP 409). */
export class StreamVersionConflictError extends DomainError {
  constructor(readonly streamId: string, readonly expectedVersion: number) {
    super("EVENTS.CONCURRENCY_CONFLICT", "conflict", `stream ${streamId} was changed concurrently (expected version ${expectedVersion}); reload and retry`);
  }
}

/** UnexpectedStreamEventError: a stream holds a type its reader does not list. A bug, not bad input. */
export class UnexpectedStreamEventError extends Error {
  constructor(readonly streamId: string, readonly version: number, readonly type: string, expected: readonly string[]) {
    super(`stream ${streamId} holds "${type}" at version ${version}, which the reader does not list (${expected.join(", ")})`);
    this.name = "UnexpectedStreamEventError";
  }
}
