CREATE SCHEMA "inventory";
--> statement-breakpoint
CREATE SCHEMA "orders";
--> statement-breakpoint
CREATE TABLE "inventory"."products" (
	"id" uuid PRIMARY KEY NOT NULL,
	"sku" text NOT NULL,
	"name" text NOT NULL,
	"category" text NOT NULL,
	"price_cents" integer NOT NULL,
	"cost_cents" integer NOT NULL,
	"stock" integer DEFAULT 0 NOT NULL,
	"reserved" integer DEFAULT 0 NOT NULL,
	"available" integer GENERATED ALWAYS AS (stock - reserved) STORED,
	"low_stock_threshold" integer DEFAULT 10 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "products_sku_key" UNIQUE("sku"),
	CONSTRAINT "products_stock_nonnegative" CHECK ("inventory"."products"."stock" >= 0),
	CONSTRAINT "products_reserved_within_stock" CHECK ("inventory"."products"."reserved" >= 0 and "inventory"."products"."reserved" <= "inventory"."products"."stock"),
	CONSTRAINT "products_money_nonnegative" CHECK ("inventory"."products"."price_cents" >= 0 and "inventory"."products"."cost_cents" >= 0),
	CONSTRAINT "products_threshold_nonnegative" CHECK ("inventory"."products"."low_stock_threshold" >= 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."reservations" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"lines" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."order_views" (
	"id" uuid PRIMARY KEY NOT NULL,
	"customer_id" uuid NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"version" integer NOT NULL,
	"last_sequence" bigint NOT NULL,
	"state" jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX "products_category_id_idx" ON "inventory"."products" USING btree ("category","id");--> statement-breakpoint
CREATE INDEX "order_views_customer_id_idx" ON "orders"."order_views" USING btree ("customer_id","id");--> statement-breakpoint
CREATE INDEX "order_views_customer_status_id_idx" ON "orders"."order_views" USING btree ("customer_id","status","id");--> statement-breakpoint
CREATE INDEX "order_views_created_at_id_idx" ON "orders"."order_views" USING btree ("created_at","id");