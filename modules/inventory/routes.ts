import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, decodeCursor, defineRoute, listOf, PageQuery, page, problem, userText } from "../../src/platform.ts";
import { createProduct, type InventoryDeps, MAX_STOCK, restock, updateProduct } from "./commands.ts";
import { getProduct, listProducts } from "./queries.ts";

const Cents = z.number().int().min(0).max(100_000_000);
const Count = z.number().int().min(0).max(MAX_STOCK);

const ProductSchema = z
  .object({
    id: z.uuid(),
    sku: z.string(),
    name: z.string(),
    category: z.string(),
    priceCents: z.number().int(),
    costCents: z.number().int(),
    stock: z.number().int(),
    reserved: z.number().int(),
    available: z.number().int(),
    lowStockThreshold: z.number().int(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi("Product");

const fields = {
  sku: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "1-64 letters, digits, '.', '_' or '-'"),
  name: userText().trim().min(1).max(200),
  category: z.string().trim().min(1).max(100),
  priceCents: Cents,
  costCents: Cents,
  lowStockThreshold: Count,
};
const NewProductSchema = z
  .object({ ...fields, stock: Count.optional(), lowStockThreshold: Count.optional() })
  .strict()
  .openapi("NewProduct");
const ProductPatchSchema = z
  .object(fields)
  .partial()
  .strict()
  .refine((p) => Object.keys(p).length > 0, "give at least one field to change")
  .openapi("ProductPatch");
const RestockSchema = z
  .object({ quantity: z.number().int().min(1).max(MAX_STOCK) })
  .strict()
  .openapi("Restock");
const IdParam = z.object({ id: z.uuid() });
const json = <T extends z.ZodType>(schema: T, description = "OK") => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { "application/json": { schema } } } });

/** inventoryRoutes adds the catalog routes: anyone reads, admins write. */
export function inventoryRoutes(api: OpenAPIHono<AppEnv>, deps: InventoryDeps): void {
  api.openapi(
    defineRoute(
      { access: "admin", idempotent: true },
      {
        method: "post",
        path: "/products",
        tags: ["inventory"],
        summary: "Add a product to the catalog",
        request: body(NewProductSchema),
        responses: { 201: json(ProductSchema, "Created"), 400: problem("Invalid input"), 403: problem("Not an admin"), 409: problem("SKU taken") },
      },
    ),
    async (c) => {
      const product = await createProduct(deps, c.req.valid("json"));
      c.header("location", `/api/v1/products/${product.id}`);
      return c.json(product, 201);
    },
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "patch",
        path: "/products/{id}",
        tags: ["inventory"],
        summary: "Change a product's catalog fields (stock changes only by restock and orders)",
        request: { params: IdParam, ...body(ProductPatchSchema) },
        responses: {
          200: json(ProductSchema),
          400: problem("Invalid input"),
          403: problem("Not an admin"),
          404: problem("No such product"),
          409: problem("SKU taken"),
        },
      },
    ),
    async (c) => c.json(await updateProduct(deps, c.req.valid("param").id, c.req.valid("json")), 200),
  );

  api.openapi(
    defineRoute(
      { access: "admin" },
      {
        method: "post",
        path: "/products/{id}/restock",
        tags: ["inventory"],
        summary: "Add units to a product's stock",
        request: { params: IdParam, ...body(RestockSchema) },
        responses: {
          200: json(ProductSchema),
          400: problem("Invalid input"),
          403: problem("Not an admin"),
          404: problem("No such product"),
          422: problem("Stock would pass its limit"),
        },
      },
    ),
    async (c) => c.json(await restock(deps, c.req.valid("param").id, c.req.valid("json").quantity), 200),
  );

  api.openapi(
    defineRoute(
      { access: "public" },
      {
        method: "get",
        path: "/products",
        tags: ["inventory"],
        summary: "The catalog, oldest first, optionally one category",
        request: { query: PageQuery.extend({ category: z.string().trim().min(1).max(100).optional() }) },
        responses: { 200: json(listOf(ProductSchema, "ProductPage")), 400: problem("Invalid input") },
      },
    ),
    async (c) => {
      const q = c.req.valid("query");
      const after = decodeCursor(q.cursor, z.tuple([z.uuid()]));
      const rows = await listProducts(deps.db, { category: q.category, after: after?.[0], limit: q.limit + 1 });
      return c.json(
        page(rows, q.limit, (p) => [p.id]),
        200,
      );
    },
  );

  api.openapi(
    defineRoute(
      { access: "public" },
      {
        method: "get",
        path: "/products/{id}",
        tags: ["inventory"],
        summary: "One product with its stock",
        request: { params: IdParam },
        responses: { 200: json(ProductSchema), 400: problem("Invalid input"), 404: problem("No such product") },
      },
    ),
    async (c) => c.json(await getProduct(deps.db, c.req.valid("param").id), 200),
  );
}
