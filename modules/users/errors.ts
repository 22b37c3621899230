import { DomainError } from "../../src/platform.ts";

export class UsernameTakenError extends DomainError {
  constructor() {
    super("USERS.USERNAME_TAKEN", "conflict", "that username is already taken");
  }
}

export class EmailTakenError extends DomainError {
  constructor() {
    super("USERS.EMAIL_TAKEN", "conflict", "an account with that email already exists");
  }
}

export class InvalidCredentialsError extends DomainError {
  constructor() {
    super("USERS.INVALID_CREDENTIALS", "unauthorized", "the login or password is wrong");
  }
}

export class UserNotFoundError extends DomainError {
  constructor() {
    super("USERS.NOT_FOUND", "not_found", "user not found");
  }
}

export class CannotFollowSelfError extends DomainError {
  constructor() {
    super("USERS.CANNOT_FOLLOW_SELF", "unprocessable", "you cannot follow yourself");
  }
}
