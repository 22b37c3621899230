/**
 * The platform's public API for modules. A module imports from `src/` only through this file.
 */
export { type Db, type Tx, type Executor, afterCommit, rawSql } from "./db/client.ts";
export { prepared, type PreparedStatement } from "./db/prepared.ts";
export { DomainError, ValidationError, NotFoundError, ConflictError, ForbiddenError, UnauthorizedError, type ErrorKind, type FieldError } from "./errors.ts";
export { defineEvent, type EventDefinition, type EventData } from "./events/registry.ts";
export { defineModule, type ModuleDefinition } from "./modules.ts";
export { defineRoute, problem, ProblemSchema } from "./http/route.ts";
export { currentUser, type Access, type TokenIssuer } from "./http/auth.ts";
export { requestLog } from "./http/edge.ts";
export type { AppEnv, AuthUser } from "./http/env.ts";
export type { EventEnvelope, NewEvent } from "../outbox/envelope.ts";
export type { Appender, SubscriptionDefinition, HandlerContext } from "../outbox/types.ts";
export { isUniqueViolation } from "../outbox/store.ts";
export { StreamVersionConflictError } from "../outbox/errors.ts";
