import { randomUUIDv7 } from "bun";
import { eq, sql } from "drizzle-orm";
import { type Appender, type Db, isUniqueViolation } from "../../src/platform.ts";
import { ProductNotFoundError, SkuTakenError, StockLimitError } from "./errors.ts";
import { type Product, toProduct } from "./product.ts";
import { products } from "./schema.ts";

export interface InventoryDeps {
  db: Db;
  outbox: Appender;
}

/** MAX_STOCK keeps counts well inside Postgres integers. */
export const MAX_STOCK = 1_000_000_000;

export interface NewProduct {
  sku: string;
  name: string;
  category: string;
  priceCents: number;
  costCents: number;
  stock?: number | undefined;
  lowStockThreshold?: number | undefined;
}

/** createProduct adds a product to the catalog. */
export async function createProduct(deps: InventoryDeps, input: NewProduct): Promise<Product> {
  try {
    const [row] = await deps.db
      .insert(products)
      .values({ id: randomUUIDv7(), ...input, stock: input.stock ?? 0, lowStockThreshold: input.lowStockThreshold ?? 10 })
      .returning();
    return toProduct(row!);
  } catch (err) {
    if (isUniqueViolation(err, "products_sku_key")) throw new SkuTakenError();
    throw err;
  }
}

export type ProductPatch = Partial<Pick<NewProduct, "sku" | "name" | "category" | "priceCents" | "costCents" | "lowStockThreshold">>;

/** updateProduct changes catalog fields; stock moves only through restock and orders. */
export async function updateProduct(deps: InventoryDeps, id: string, patch: ProductPatch): Promise<Product> {
  try {
    const [row] = await deps.db
      .update(products)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(products.id, id))
      .returning();
    if (!row) throw new ProductNotFoundError();
    return toProduct(row);
  } catch (err) {
    if (isUniqueViolation(err, "products_sku_key")) throw new SkuTakenError();
    throw err;
  }
}

/** restock adds `quantity` units to a product's stock. */
export async function restock(deps: InventoryDeps, id: string, quantity: number): Promise<Product> {
  const [row] = await deps.db
    .update(products)
    .set({ stock: sql`${products.stock} + ${quantity}`, updatedAt: sql`now()` })
    .where(sql`${products.id} = ${id} and ${products.stock} + ${quantity} <= ${MAX_STOCK}`)
    .returning();
  if (row) return toProduct(row);
  const [exists] = await deps.db.select({ id: products.id }).from(products).where(eq(products.id, id));
  throw exists ? new StockLimitError() : new ProductNotFoundError();
}
