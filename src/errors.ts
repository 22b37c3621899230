/** ErrorKind classifies a domain failure; the HTTP edge maps each kind to one status. */
export type ErrorKind =
  | "validation"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "illegal_state"
  | "unprocessable"
  | "too_large"
  | "rate_limited"
  | "unavailable";

/** FieldError is one per-field problem in a 400 response's `errors[]`. */
export interface FieldError {
  path: string;
  message: string;
  code?: string;
}

/**
 * DomainError is the base of every error a use case throws on purpose; it carries a stable
 * `code` (e.g. `USERS.EMAIL_TAKEN`) and a `kind`, never an HTTP status.
 *
 * @example class EmailTakenError extends DomainError { constructor() { super("USERS.EMAIL_TAKEN", "conflict", "email is taken"); } }
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    readonly kind: ErrorKind,
    message: string,
    readonly details: { errors?: FieldError[]; headers?: Record<string, string>; [k: string]: unknown } = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** ValidationError is a 400 with per-field errors. */
export class ValidationError extends DomainError {
  constructor(message: string, errors: FieldError[] = [], code = "VALIDATION.FAILED") {
    super(code, "validation", message, { errors });
  }
}

/** NotFoundError is a 404 for a missing resource. */
export class NotFoundError extends DomainError {
  constructor(what: string, code = "NOT_FOUND") {
    super(code, "not_found", `${what} not found`);
  }
}

/** UnauthorizedError is a 401: no or bad credentials. */
export class UnauthorizedError extends DomainError {
  constructor(message = "authentication required", code = "AUTH.UNAUTHORIZED") {
    super(code, "unauthorized", message);
  }
}

/** ForbiddenError is a 403: authenticated but not allowed. */
export class ForbiddenError extends DomainError {
  constructor(message = "you are not allowed to do this", code = "AUTH.FORBIDDEN") {
    super(code, "forbidden", message);
  }
}

/** ConflictError is a 409, e.g. a concurrency conflict or a taken unique value. */
export class ConflictError extends DomainError {
  constructor(message: string, code = "CONFLICT") {
    super(code, "conflict", message);
  }
}
