import { describe, expect, it } from "bun:test";
import { ValidationError } from "../../src/errors.ts";
import { assertNever, type Decider, type DeciderEvent, fold, UnhandledCaseError } from "../../src/events/decider.ts";
import {
  AccountAlreadyOpenError,
  AccountNotEmptyError,
  AccountNotOpenError,
  bankAccount,
  closed,
  deposited,
  InsufficientFundsError,
  opened,
  withdrawn,
} from "../support/bank-account.ts";
import { deciderSpec } from "../support/decider.ts";

const spec = deciderSpec(bankAccount);

describe("bank account decider", () => {
  it("opens a new account", () => spec.given([]).when({ type: "open", owner: "ada" }).then(opened("ada", 0)));

  it("refuses to open an account twice", () =>
    spec
      .given([opened()])
      .when({ type: "open", owner: "bob" })
      .thenThrows(AccountAlreadyOpenError, { code: "BANKING.ACCOUNT_ALREADY_OPEN", kind: "conflict" }));

  it("pays money into an open account", () =>
    spec
      .given([opened()])
      .when({ type: "deposit", amount: 5 })
      .then([deposited(5)]));

  it("refuses a deposit before the account is open", () =>
    spec.given([]).when({ type: "deposit", amount: 5 }).thenThrows(AccountNotOpenError, { kind: "illegal_state" }));

  it("refuses a deposit after the account is closed", () =>
    spec
      .given([opened(), closed()])
      .when({ type: "deposit", amount: 5 })
      .thenThrows((err) => err instanceof AccountNotOpenError && err.message.includes("closed")));

  it("rejects an amount that is not a positive integer as a validation error", () => {
    spec.given([opened()]).when({ type: "deposit", amount: 0 }).thenThrows(ValidationError, { kind: "validation" });
    spec.given([opened()]).when({ type: "deposit", amount: 1.5 }).thenThrows(ValidationError);
  });

  it("decides several events for one command, in order", () =>
    spec
      .given([opened()])
      .when({ type: "depositMany", amounts: [1, 2, 3] })
      .then([deposited(1), deposited(2), deposited(3)]));

  it("decides nothing for an empty batch", () => spec.given([opened()]).when({ type: "depositMany", amounts: [] }).thenNothingHappens());

  it("lets a withdrawal use the balance and the overdraft, and no more", () => {
    spec
      .given([opened("ada", 10), deposited(5)])
      .when({ type: "withdraw", amount: 15 })
      .then(withdrawn(15));
    spec
      .given([opened("ada", 10), deposited(5)])
      .when({ type: "withdraw", amount: 16 })
      .thenThrows(InsufficientFundsError, { available: 15, code: "BANKING.INSUFFICIENT_FUNDS" });
  });

  it("closes only an empty account", () => {
    spec
      .given([opened(), deposited(3), withdrawn(3)])
      .when({ type: "close" })
      .then(closed());
    spec
      .given([opened(), deposited(3)])
      .when({ type: "close" })
      .thenThrows(AccountNotEmptyError);
  });

  it("folds the events into the state, decided ones included", () =>
    spec
      .given([opened("ada", 7), deposited(10)])
      .when({ type: "withdraw", amount: 4 })
      .thenState({ status: "open", owner: "ada", balance: 6, overdraftLimit: 7, movements: 2 }));
});

describe("deciderSpec", () => {
  it("fails when the decided events differ from the expected ones", () => {
    expect(() =>
      spec
        .given([opened()])
        .when({ type: "deposit", amount: 5 })
        .then([deposited(6)]),
    ).toThrow();
    expect(() => spec.given([opened()]).when({ type: "deposit", amount: 5 }).thenNothingHappens()).toThrow();
  });

  it("fails thenThrows when decide throws nothing, another class, or an error the predicate or fields reject", () => {
    expect(() => spec.given([opened()]).when({ type: "deposit", amount: 5 }).thenThrows(Error)).toThrow(/expected decide to throw/);
    expect(() => spec.given([]).when({ type: "deposit", amount: 5 }).thenThrows(InsufficientFundsError)).toThrow();
    expect(() =>
      spec
        .given([])
        .when({ type: "deposit", amount: 5 })
        .thenThrows(() => false),
    ).toThrow(/predicate rejects/);
    expect(() => spec.given([]).when({ type: "deposit", amount: 5 }).thenThrows(AccountNotOpenError, { code: "OTHER" })).toThrow();
  });

  it("fails a decider whose evolve mutates the state it was given", () => {
    type Counter = { n: number };
    const mutating: Decider<Counter, { type: "inc" }, DeciderEvent<"counter.incremented", { by: number }>> = {
      initialState: () => ({ n: 0 }),
      evolve: (state, event) => {
        state.n += event.data.by;
        return state;
      },
      decide: () => ({ type: "counter.incremented", data: { by: 1 } }),
    };
    expect(() =>
      deciderSpec(mutating)
        .given([{ type: "counter.incremented", data: { by: 1 } }])
        .when({ type: "inc" })
        .then([{ type: "counter.incremented", data: { by: 1 } }]),
    ).toThrow(TypeError);
  });
});

describe("assertNever and fold", () => {
  it("throws for a value the types said could not reach it, naming its type", () => {
    const rogue = { type: "account.frozen", data: {} } as unknown as never;
    expect(() => assertNever(rogue)).toThrow(UnhandledCaseError);
    expect(() => bankAccount.evolve(bankAccount.initialState(), rogue)).toThrow(/unhandled case: account.frozen/);
    expect(() => bankAccount.decide(rogue, bankAccount.initialState())).toThrow(/unhandled case: account.frozen/);
  });

  it("fails the typecheck for a switch that misses a case", () => {
    const partial = (e: DeciderEvent<"a", null> | DeciderEvent<"b", null>) => {
      switch (e.type) {
        case "a":
          return 1;
        default:
          // @ts-expect-error "b" is not handled, so `e` is not `never` here
          return assertNever(e);
      }
    };
    expect(partial({ type: "a", data: null })).toBe(1);
  });

  it("replays events from the initial state, or from a given one", () => {
    expect(fold(bankAccount, [opened(), deposited(4), withdrawn(1)])).toMatchObject({ status: "open", balance: 3, movements: 2 });
    const from = fold(bankAccount, [opened()]);
    expect(fold(bankAccount, [deposited(2)], from)).toMatchObject({ balance: 2 });
    expect(fold(bankAccount, [])).toEqual(bankAccount.initialState());
  });
});
