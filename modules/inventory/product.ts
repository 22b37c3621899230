import type { products } from "./schema.ts";

/** Product is the public view of a catalog entry with its stock. */
export interface Product {
  id: string;
  sku: string;
  name: string;
  category: string;
  priceCents: number;
  costCents: number;
  stock: number;
  reserved: number;
  available: number;
  lowStockThreshold: number;
  createdAt: string;
  updatedAt: string;
}

/** toProduct maps a row to the public view. */
export const toProduct = (r: typeof products.$inferSelect): Product => ({
  id: r.id,
  sku: r.sku,
  name: r.name,
  category: r.category,
  priceCents: r.priceCents,
  costCents: r.costCents,
  stock: r.stock,
  reserved: r.reserved,
  available: r.available ?? r.stock - r.reserved,
  lowStockThreshold: r.lowStockThreshold,
  createdAt: new Date(r.createdAt).toISOString(),
  updatedAt: new Date(r.updatedAt).toISOString(),
});
