/**
 * The decider: an event-sourced aggregate as three pure functions. It knows nothing of storage;
 * `outbox/event-sourcing/` runs it against the event log (handleCommand, snapshots, temporal reads).
 */

import type { AnyEventDefinition, EventData } from "./definition.ts";

/** DeciderEvent is what a decider sees of a stored event: its type name and its data. */
export interface DeciderEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

/**
 * DeciderEventOf is the decider's event union made from event definitions, so the union is
 * written once, in `events.ts`.
 *
 * @example type AccountEvent = DeciderEventOf<(typeof accountEvents)[number]>;
 */
export type DeciderEventOf<D extends AnyEventDefinition> = D extends AnyEventDefinition ? DeciderEvent<D["type"], EventData<D>> : never;

/**
 * Decider is an aggregate's behaviour. `decide` turns a command and the current state into new
 * events (one, several or none) or throws a DomainError; `evolve` folds one event into the
 * state. Both are pure: no I/O, no clock, no randomness, and `evolve` returns a new state rather
 * than changing the one it gets (the history read keeps every intermediate state).
 *
 * `evolveVersion` tags snapshots: bump it whenever `evolve` (or the state's shape) changes, and
 * snapshots taken by the old `evolve` are ignored; the stream is replayed and snapshotted again.
 *
 * @example
 * export const account: Decider<AccountState, AccountCommand, AccountEvent> = {
 *   initialState: () => ({ status: "new", balance: 0 }),
 *   evolve: (state, event) => { switch (event.type) { case "account.opened": return { ...state, status: "open" }; ... default: return assertNever(event); } },
 *   decide: (command, state) => { switch (command.type) { case "open": return { type: "account.opened", data: { owner: command.owner } }; ... default: return assertNever(command); } },
 * };
 */
export interface Decider<State, Command, Event extends DeciderEvent> {
  initialState: () => State;
  evolve: (state: State, event: Event) => State;
  decide: (command: Command, state: State) => Event | readonly Event[];
  /** Version of `evolve` and of the state's shape; snapshots carry it (default 1). */
  evolveVersion?: number;
}

/** StateOf is a decider's state type. */
export type StateOf<D> = D extends Decider<infer S, infer _C, infer _E extends DeciderEvent> ? S : never;
/** CommandOf is a decider's command union. */
export type CommandOf<D> = D extends Decider<infer _S, infer C, infer _E extends DeciderEvent> ? C : never;
/** EventOf is a decider's event union. */
export type EventOf<D> = D extends Decider<infer _S, infer _C, infer E extends DeciderEvent> ? E : never;

/**
 * assertNever makes a `switch` over a union exhaustive: in the `default` branch the value has
 * type `never` only when every member was handled, so a new command or event type that nobody
 * handles fails the typecheck. At run time (data from outside the types) it throws.
 *
 * @example switch (command.type) { case "open": ...; case "close": ...; default: return assertNever(command); }
 */
export function assertNever(value: never): never {
  const type = (value as { type?: unknown } | null)?.type;
  throw new UnhandledCaseError(type === undefined ? JSON.stringify(value) : String(type));
}

/** UnhandledCaseError: a value reached the `default` of a switch the types say is exhaustive. A bug, not bad input. */
export class UnhandledCaseError extends Error {
  constructor(readonly what: string) {
    super(`unhandled case: ${what}`);
    this.name = "UnhandledCaseError";
  }
}

/** decisionEvents normalises what `decide` returns to an array. */
export function decisionEvents<E>(decision: E | readonly E[]): readonly E[] {
  return Array.isArray(decision) ? (decision as readonly E[]) : [decision as E];
}

/** fold replays `events` over `state` (the decider's initial state by default) with `evolve`. */
export function fold<S, C, E extends DeciderEvent>(decider: Decider<S, C, E>, events: readonly E[], state: S = decider.initialState()): S {
  let s = state;
  for (const e of events) s = decider.evolve(s, e);
  return s;
}
