import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "../../src/platform.ts";
import { ProductNotFoundError } from "./errors.ts";
import { type Product, toProduct } from "./product.ts";
import { products } from "./schema.ts";

/** getProduct returns one product by id. */
export async function getProduct(db: Db, id: string): Promise<Product> {
  const [row] = await db.select().from(products).where(eq(products.id, id));
  if (!row) throw new ProductNotFoundError();
  return toProduct(row);
}

/** getProducts returns the products with these ids (unknown ids are left out), one query. */
export async function getProducts(db: Db, ids: readonly string[]): Promise<Product[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .select()
    .from(products)
    .where(sql`${products.id} = any(${sql.param([...ids])}::uuid[])`);
  return rows.map(toProduct);
}

/**
 * listProducts reads `limit` products after the id `after` (UUID v7: creation order), optionally
 * in one category. Keyset paging on the primary key (or the category index).
 */
export async function listProducts(db: Db, q: { category?: string | undefined; after?: string | undefined; limit: number }): Promise<Product[]> {
  const rows = await db
    .select()
    .from(products)
    .where(and(q.category !== undefined ? eq(products.category, q.category) : undefined, q.after !== undefined ? gt(products.id, q.after) : undefined))
    .orderBy(asc(products.id))
    .limit(q.limit);
  return rows.map(toProduct);
}
