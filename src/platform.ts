/**
 * The platform's public API for modules. A module imports from `src/` only through this file.
 */

export { runWithEventContext } from "../outbox/context.ts";
export type { EventContext, EventEnvelope } from "../outbox/envelope.ts";
export { DeliveryDeferredError, StreamVersionConflictError } from "../outbox/errors.ts";
export {
  type CommandResult,
  type EventSourced,
  type EventSourcedOptions,
  eventSourced,
  type HandleCommandOptions,
  type HistoryEntry,
  handleCommand,
  type Loaded,
  loadState,
  loadStreams,
  type StateRead,
  stateAtTime,
  stateAtVersion,
  streamHistory,
} from "../outbox/event-sourcing/index.ts";
export { declareNoAppends } from "../outbox/horizon.ts";
export {
  type DeliveryState,
  errorName,
  failureKind,
  fullJitterDelay,
  type PendingEntry,
  putRecords,
  type SinkLog,
  sendInCalls,
  stateOf,
  utf8Length,
} from "../outbox/sinks/index.ts";
export { isUniqueViolation } from "../outbox/store.ts";
export { defineSubscription } from "../outbox/subscription.ts";
export type { Appender, HandlerContext, SubscriptionDefinition } from "../outbox/types.ts";
export { afterCommit, type Db, type Executor, rawSql, type Tx, writeBehind } from "./db/client.ts";
export { type PreparedStatement, prepared } from "./db/prepared.ts";
export { ConflictError, DomainError, type ErrorKind, type FieldError, ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from "./errors.ts";
export { assertNever, type CommandOf, type Decider, type DeciderEvent, type DeciderEventOf, type EventOf, fold, type StateOf } from "./events/decider.ts";
export {
  type AnyEventDefinition,
  defineEvent,
  type EnvelopeOf,
  type EventData,
  type EventDefinition,
  type EventInput,
  type EventMeta,
  type NewEvent,
  type Visibility,
} from "./events/definition.ts";
export { type Access, currentUser, type TokenIssuer } from "./http/auth.ts";
export { requestLog } from "./http/edge.ts";
export type { AppEnv, AuthUser } from "./http/env.ts";
export { jsonAnswer, type NativeAnswer, type NativeInput, nativeGet } from "./http/native-route.ts";
export { DEFAULT_PAGE_LIMIT, decodeCursor, encodeCursor, listOf, MAX_PAGE_LIMIT, type Page, type PageParams, PageQuery, page } from "./http/pagination.ts";
export { type SignInLimit, signInLimit } from "./http/rate-limit.ts";
export { defineRoute, ProblemSchema, problem } from "./http/route.ts";
export { normalizeText, textProblem, userText } from "./http/text.ts";
export { type BackgroundTask, defineModule, type ModuleDefinition } from "./modules.ts";
