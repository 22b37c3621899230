import { DomainError } from "../../src/platform.ts";

export class PaymentNotFoundError extends DomainError {
  constructor(detail = "no payment for this order") {
    super("PAYMENTS.NOT_FOUND", "not_found", detail);
  }
}
