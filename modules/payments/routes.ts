import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, type Db, defineRoute, problem } from "../../src/platform.ts";
import type { OrdersApi } from "../orders/index.ts";
import { PaymentNotFoundError } from "./errors.ts";
import { getPayment } from "./queries.ts";
import { PAYMENT_STATUSES } from "./schema.ts";

const PaymentSchema = z
  .object({
    orderId: z.uuid(),
    paymentId: z.uuid(),
    customerId: z.uuid(),
    status: z.enum(PAYMENT_STATUSES),
    amountCents: z.number().int(),
    currency: z.string(),
    paymentMethod: z.string(),
    chargeId: z.string().nullable(),
    refundId: z.string().nullable(),
    failureReason: z.string().nullable(),
    failureMessage: z.string().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    processedAt: z.iso.datetime().nullable(),
    refundedAt: z.iso.datetime().nullable(),
  })
  .openapi("Payment");

/** paymentsRoutes adds the payment route: an order's payment, for its owner or an admin. */
export function paymentsRoutes(api: OpenAPIHono<AppEnv>, deps: { db: Db; orders: Pick<OrdersApi, "getOrder"> }): void {
  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/orders/{id}/payment",
        tags: ["payments"],
        summary: "An order's payment: its status, amount, and charge or refund (the order's owner or an admin)",
        request: { params: z.object({ id: z.uuid() }) },
        responses: {
          200: { description: "OK", content: { "application/json": { schema: PaymentSchema } } },
          400: problem("Invalid input"),
          401: problem("Not signed in"),
          404: problem("No such order (or not yours), or no payment yet"),
        },
      },
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const user = currentUser(c);
      // Ownership is the orders module's to say, through its read API.
      const order = await deps.orders.getOrder(id);
      if (!order || (order.customerId !== user.id && user.role !== "admin")) throw new PaymentNotFoundError("order not found");
      return c.json(await getPayment(deps.db, id), 200);
    },
  );
}
