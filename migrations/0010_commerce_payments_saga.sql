CREATE SCHEMA "payments";
--> statement-breakpoint
CREATE TABLE "orders"."saga_deadlines" (
	"order_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"timeout_ms" integer NOT NULL,
	"causation_id" text NOT NULL,
	"correlation_id" text NOT NULL,
	"actor_id" text,
	CONSTRAINT "saga_deadlines_order_id_kind_pk" PRIMARY KEY("order_id","kind")
);
--> statement-breakpoint
CREATE TABLE "orders"."sagas" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"state" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payments"."payments" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"id" uuid NOT NULL,
	"customer_id" uuid NOT NULL,
	"amount_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"payment_method" text NOT NULL,
	"status" text NOT NULL,
	"charge_id" text,
	"refund_id" text,
	"failure_reason" text,
	"failure_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone,
	"refunded_at" timestamp with time zone,
	CONSTRAINT "payments_id_key" UNIQUE("id"),
	CONSTRAINT "payments_charge_id_key" UNIQUE("charge_id"),
	CONSTRAINT "payments_refund_id_key" UNIQUE("refund_id"),
	CONSTRAINT "payments_amount_nonnegative" CHECK ("payments"."payments"."amount_cents" >= 0),
	CONSTRAINT "payments_status_known" CHECK ("payments"."payments"."status" in ('pending', 'processed', 'failed', 'unanswered', 'refunded', 'voided')),
	CONSTRAINT "payments_charged_has_charge_id" CHECK (("payments"."payments"."status" in ('processed', 'refunded')) = ("payments"."payments"."charge_id" is not null)),
	CONSTRAINT "payments_refunded_has_refund_id" CHECK (("payments"."payments"."status" = 'refunded') = ("payments"."payments"."refund_id" is not null))
);
--> statement-breakpoint
CREATE INDEX "saga_deadlines_due_at_idx" ON "orders"."saga_deadlines" USING btree ("due_at");