import { DomainError } from "../../src/platform.ts";

export class ProductNotFoundError extends DomainError {
  constructor() {
    super("INVENTORY.PRODUCT_NOT_FOUND", "not_found", "product not found");
  }
}

export class SkuTakenError extends DomainError {
  constructor() {
    super("INVENTORY.SKU_TAKEN", "conflict", "a product with that SKU already exists");
  }
}

export class StockLimitError extends DomainError {
  constructor() {
    super("INVENTORY.STOCK_LIMIT", "unprocessable", "the restock would take the stock past its limit");
  }
}
