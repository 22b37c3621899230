/**
 * A small bank account, the sample decider of the event-sourcing tests and benchmark: commands
 * that append one event, several, or none, domain errors of several kinds, and a state that
 * depends on the order of events (the balance check).
 */
import { z } from "zod";
import { DomainError, ValidationError } from "../../src/errors.ts";
import { assertNever, type Decider, type DeciderEventOf } from "../../src/events/decider.ts";
import { defineEvent } from "../../src/events/definition.ts";

export const AccountOpened = defineEvent({
  source: "banking",
  type: "account.opened",
  visibility: "internal",
  description: "A bank account was opened",
  schema: z.object({ owner: z.string().min(1), overdraftLimit: z.number().int().nonnegative() }),
});
export const MoneyDeposited = defineEvent({
  source: "banking",
  type: "account.deposited",
  visibility: "internal",
  description: "Money was paid in",
  schema: z.object({ amount: z.number().int().positive() }),
});
export const MoneyWithdrawn = defineEvent({
  source: "banking",
  type: "account.withdrawn",
  visibility: "internal",
  description: "Money was taken out",
  schema: z.object({ amount: z.number().int().positive() }),
});
export const AccountClosed = defineEvent({
  source: "banking",
  type: "account.closed",
  visibility: "internal",
  description: "The account was closed",
  schema: z.object({}),
});
export const bankingEvents = [AccountOpened, MoneyDeposited, MoneyWithdrawn, AccountClosed];

export type AccountEvent = DeciderEventOf<(typeof bankingEvents)[number]>;

export type AccountCommand =
  | { type: "open"; owner: string; overdraftLimit?: number }
  | { type: "deposit"; amount: number }
  | { type: "depositMany"; amounts: number[] }
  | { type: "withdraw"; amount: number }
  | { type: "close" };

export interface AccountState {
  status: "new" | "open" | "closed";
  owner: string | null;
  balance: number;
  overdraftLimit: number;
  /** Deposits and withdrawals so far. */
  movements: number;
}

export class AccountNotOpenError extends DomainError {
  constructor(status: AccountState["status"]) {
    super("BANKING.ACCOUNT_NOT_OPEN", "illegal_state", status === "new" ? "the account is not open yet" : "the account is closed");
  }
}
export class AccountAlreadyOpenError extends DomainError {
  constructor() {
    super("BANKING.ACCOUNT_ALREADY_OPEN", "conflict", "the account is already open");
  }
}
export class InsufficientFundsError extends DomainError {
  constructor(readonly available: number) {
    super("BANKING.INSUFFICIENT_FUNDS", "unprocessable", `only ${available} is available`);
  }
}
export class AccountNotEmptyError extends DomainError {
  constructor(balance: number) {
    super("BANKING.ACCOUNT_NOT_EMPTY", "illegal_state", `the balance is ${balance}; it must be 0 to close`);
  }
}

export const opened = (owner = "ada", overdraftLimit = 0): AccountEvent => ({ type: "account.opened", data: { owner, overdraftLimit } });
export const deposited = (amount: number): AccountEvent => ({ type: "account.deposited", data: { amount } });
export const withdrawn = (amount: number): AccountEvent => ({ type: "account.withdrawn", data: { amount } });
export const closed = (): AccountEvent => ({ type: "account.closed", data: {} });

function positive(amount: number, path = "amount"): number {
  if (!Number.isInteger(amount) || amount <= 0) throw new ValidationError("amounts are positive integers", [{ path, message: "must be a positive integer" }]);
  return amount;
}

function requireOpen(state: AccountState): void {
  if (state.status !== "open") throw new AccountNotOpenError(state.status);
}

/** bankAccount is the decider: every switch ends in assertNever, so a new case must be handled. */
export const bankAccount: Decider<AccountState, AccountCommand, AccountEvent> = {
  initialState: () => ({ status: "new", owner: null, balance: 0, overdraftLimit: 0, movements: 0 }),

  evolve(state, event) {
    switch (event.type) {
      case "account.opened":
        return { ...state, status: "open", owner: event.data.owner, overdraftLimit: event.data.overdraftLimit };
      case "account.deposited":
        return { ...state, balance: state.balance + event.data.amount, movements: state.movements + 1 };
      case "account.withdrawn":
        return { ...state, balance: state.balance - event.data.amount, movements: state.movements + 1 };
      case "account.closed":
        return { ...state, status: "closed" };
      default:
        return assertNever(event);
    }
  },

  decide(command, state) {
    switch (command.type) {
      case "open":
        if (state.status !== "new") throw new AccountAlreadyOpenError();
        return opened(command.owner, command.overdraftLimit ?? 0);
      case "deposit":
        requireOpen(state);
        return deposited(positive(command.amount));
      case "depositMany":
        requireOpen(state);
        return command.amounts.map((a, i) => deposited(positive(a, `amounts.${i}`)));
      case "withdraw": {
        requireOpen(state);
        const available = state.balance + state.overdraftLimit;
        if (positive(command.amount) > available) throw new InsufficientFundsError(available);
        return withdrawn(command.amount);
      }
      case "close":
        requireOpen(state);
        if (state.balance !== 0) throw new AccountNotEmptyError(state.balance);
        return closed();
      default:
        return assertNever(command);
    }
  },
};
