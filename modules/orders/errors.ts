import { DomainError, type FieldError } from "../../src/platform.ts";

export class OrderNotFoundError extends DomainError {
  constructor(detail = "order not found") {
    super("ORDERS.NOT_FOUND", "not_found", detail);
  }
}

export class OrderAlreadyExistsError extends DomainError {
  constructor() {
    super("ORDERS.ALREADY_EXISTS", "conflict", "an order with this id already exists");
  }
}

export class InvalidOrderError extends DomainError {
  constructor(message: string, errors: FieldError[]) {
    super("ORDERS.INVALID", "validation", message, { errors });
  }
}

export class UnknownProductsError extends DomainError {
  constructor(readonly productIds: string[]) {
    super("ORDERS.UNKNOWN_PRODUCT", "unprocessable", `no such product: ${productIds.join(", ")}`, { productIds });
  }
}

export class OrderAlreadyShippedError extends DomainError {
  constructor() {
    super("ORDERS.ALREADY_SHIPPED", "illegal_state", "the order has already shipped");
  }
}

export class OrderCancelledError extends DomainError {
  constructor() {
    super("ORDERS.CANCELLED", "illegal_state", "the order is cancelled");
  }
}

export class OrderNotConfirmedError extends DomainError {
  constructor() {
    super("ORDERS.NOT_CONFIRMED", "illegal_state", "the order is not confirmed yet");
  }
}

export class OrderNotShippedError extends DomainError {
  constructor() {
    super("ORDERS.NOT_SHIPPED", "illegal_state", "the order has not shipped yet");
  }
}

export class OrderNotPendingError extends DomainError {
  constructor(status: string) {
    super("ORDERS.NOT_PENDING", "illegal_state", `the order is ${status}, not PENDING`);
  }
}
