/**
 * The platform's public API for modules. A module imports from `src/` only through this file.
 */
export { type Db, type Tx, type Executor, afterCommit, rawSql } from "./db/client.ts";
export { DomainError, ValidationError, NotFoundError, ConflictError, ForbiddenError, UnauthorizedError, type ErrorKind, type FieldError } from "./errors.ts";
export {
  defineEvent,
  type AnyEventDefinition,
  type EnvelopeOf,
  type EventData,
  type EventDefinition,
  type EventInput,
  type EventMeta,
  type NewEvent,
  type Visibility,
} from "./events/definition.ts";
export { defineModule, type ModuleDefinition } from "./modules.ts";
export { defineRoute, problem, ProblemSchema } from "./http/route.ts";
export { PageQuery, listOf, page, encodeCursor, decodeCursor, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, type Page, type PageParams } from "./http/pagination.ts";
export { currentUser, type Access, type TokenIssuer } from "./http/auth.ts";
export type { AppEnv, AuthUser } from "./http/env.ts";
export type { EventEnvelope } from "../outbox/envelope.ts";
export type { Appender, SubscriptionDefinition, HandlerContext } from "../outbox/types.ts";
export { defineSubscription } from "../outbox/subscription.ts";
export { isUniqueViolation } from "../outbox/store.ts";
export { StreamVersionConflictError } from "../outbox/errors.ts";
export { assertNever, type Decider, type DeciderEvent, type DeciderEventOf, type StateOf, type CommandOf, type EventOf, fold } from "./events/decider.ts";
export {
  eventSourced,
  handleCommand,
  loadState,
  stateAtVersion,
  stateAtTime,
  streamHistory,
  type EventSourced,
  type EventSourcedOptions,
  type CommandResult,
  type HandleCommandOptions,
  type HistoryEntry,
  type StateRead,
} from "../outbox/event-sourcing/index.ts";
