/**
 * TransactionAbortedError: the transaction (or savepoint) could not commit because a statement
 * failed and the callback caught the error without rethrowing it. `cause` is that statement's
 * error and `code` its SQLSTATE, so retry logic keyed on the code (40001, 40P01, 55P03) still
 * retries.
 */
export class TransactionAbortedError extends Error {
  readonly code: string | undefined;

  constructor(cause?: unknown) {
    super(
      "the transaction was aborted by an earlier failed statement and has been rolled back; rethrow database errors inside a transaction, or use a nested transaction (savepoint) to recover from one",
      cause === undefined ? undefined : { cause },
    );
    this.name = "TransactionAbortedError";
    this.code = (cause as { code?: unknown } | null)?.code === undefined ? undefined : String((cause as { code: unknown }).code);
  }
}

/** TransactionFinishedError: a statement was sent through a transaction handle after the transaction had ended. */
export class TransactionFinishedError extends Error {
  constructor(how: string) {
    super(`the transaction this handle belongs to has ${how}; statements sent through it are refused`);
    this.name = "TransactionFinishedError";
  }
}

/** isAbortedTransaction tells Postgres's "current transaction is aborted" (25P02), raw or wrapped by drizzle. */
export function isAbortedTransaction(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  return e?.code === "25P02" || e?.cause?.code === "25P02";
}

/** isFinishedError tells a TransactionFinishedError, raw or wrapped by drizzle. */
export function isFinishedError(err: unknown): boolean {
  return err instanceof TransactionFinishedError || (err as { cause?: unknown } | undefined)?.cause instanceof TransactionFinishedError;
}

/** firstFailure waits for every statement and returns the first one's error, if any failed. */
export async function firstFailure(statements: readonly Promise<unknown>[]): Promise<{ error: unknown } | undefined> {
  const settled = await Promise.allSettled(statements);
  const failed = settled.find((r) => r.status === "rejected");
  return failed ? { error: (failed as PromiseRejectedResult).reason } : undefined;
}
