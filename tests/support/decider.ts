import { expect } from "bun:test";
import { type Decider, type DeciderEvent, decisionEvents } from "../../src/events/decider.ts";

type ErrorClass = abstract new (...args: never[]) => Error;

/** DeciderThen is the last step of a decider specification. */
export interface DeciderThen<S, E> {
  /** then asserts that the command decided exactly these events, in this order. */
  then(expected: E | readonly E[]): void;
  /** thenNothingHappens asserts that the command decided no events (and threw nothing). */
  thenNothingHappens(): void;
  /** thenThrows asserts that `decide` threw an instance of the class (or an error the predicate accepts), optionally matching `fields` (e.g. `{ code }`). */
  thenThrows(expected: ErrorClass | ((err: unknown) => boolean), fields?: Record<string, unknown>): void;
  /** thenState asserts the state after the given events and the decided ones. */
  thenState(expected: S): void;
}

/**
 * deciderSpec builds given/when/then checks for a decider, without a database: the given events
 * are folded with `evolve`, the command goes to `decide`, and the outcome is compared. Every
 * state, event and command it hands the decider is deep-frozen, so an `evolve` or `decide` that
 * mutates its input fails the test instead of corrupting a history or a snapshot.
 *
 * @example
 * const spec = deciderSpec(bankAccount);
 * it("pays money in", () => spec.given([opened()]).when({ type: "deposit", amount: 5 }).then([deposited(5)]));
 */
export function deciderSpec<S, C, E extends DeciderEvent>(decider: Decider<S, C, E>) {
  const foldFrozen = (events: readonly E[]) => {
    let state = deepFreeze(decider.initialState());
    for (const e of events) state = deepFreeze(decider.evolve(state, deepFreeze(structuredClone(e))));
    return state;
  };
  return {
    given(events: E | readonly E[] = []) {
      const past = decisionEvents(events);
      return {
        when(command: C): DeciderThen<S, E> {
          const run = () => {
            const state = foldFrozen(past);
            return { state, events: [...decisionEvents(decider.decide(deepFreeze(structuredClone(command)), state))] };
          };
          return {
            then(expected) {
              expect(run().events).toEqual([...decisionEvents(expected)]);
            },
            thenNothingHappens() {
              expect(run().events).toEqual([]);
            },
            thenThrows(expected, fields) {
              let thrown: unknown;
              let decided: E[] | undefined;
              try {
                decided = run().events;
              } catch (err) {
                thrown = err;
              }
              if (decided) throw new Error(`expected decide to throw, but it decided ${JSON.stringify(decided)}`);
              if (isErrorClass(expected)) expect(thrown).toBeInstanceOf(expected);
              else if (!expected(thrown)) throw new Error(`decide threw an error the predicate rejects: ${String(thrown)}`);
              if (fields) expect(thrown).toMatchObject(fields);
            },
            thenState(expected) {
              const { state, events } = run();
              let after = state;
              for (const e of events) after = decider.evolve(after, deepFreeze(e));
              expect(after).toEqual(expected);
            },
          };
        },
      };
    },
  };
}

function isErrorClass(f: unknown): f is ErrorClass {
  return typeof f === "function" && (f === Error || f.prototype instanceof Error);
}

/** deepFreeze freezes a value and everything reachable from it, and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
