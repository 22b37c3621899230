/**
 * Helpers for the shop's end-to-end tests: a test server listening on a real port, products,
 * orders placed and watched over real HTTP.
 */
import { expect } from "bun:test";
import { unique } from "./http.ts";
import type { TestServer } from "./server.ts";

export const ADDRESS = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };

export interface Order {
  id: string;
  customerId: string;
  status: string;
  totalCents: number;
  version: number;
  cancellationReason: string | null;
  trackingNumber: string | null;
  carrier: string | null;
  createdAt: string;
  updatedAt: string;
}
export interface Product {
  id: string;
  stock: number;
  reserved: number;
  available: number;
}
export interface Payment {
  orderId: string;
  status: string;
  amountCents: number;
  chargeId: string | null;
  refundId: string | null;
  failureReason: string | null;
  failureMessage: string | null;
}
export interface Saga {
  status: string;
  paymentDueAt: string | null;
  steps: { name: string; kind: string; status: string; startedAt: string | null; finishedAt: string | null; detail: string | null }[];
}

/** Shop drives one listening test server over HTTP (fetch to 127.0.0.1). */
export class Shop {
  readonly base: string;
  constructor(
    readonly s: TestServer,
    port: number,
  ) {
    this.base = `http://127.0.0.1:${port}`;
  }

  /** listen starts the server's HTTP listener and returns a Shop speaking to it. */
  static listen(s: TestServer): Shop {
    return new Shop(s, s.listen());
  }

  fetch(path: string, init: RequestInit & { json?: unknown; token?: string } = {}): Promise<Response> {
    const { json, token, headers, ...rest } = init;
    const h = new Headers(headers);
    if (json !== undefined) h.set("content-type", "application/json");
    if (token) h.set("authorization", `Bearer ${token}`);
    return fetch(`${this.base}${path}`, { ...rest, headers: h, body: json !== undefined ? JSON.stringify(json) : rest.body });
  }

  async json<T>(path: string, token: string): Promise<T> {
    const res = await this.fetch(path, { token });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  async newProduct(admin: string, stock: number, priceCents = 1250, name = "Gadget"): Promise<string> {
    const res = await this.fetch("/api/v1/products", {
      method: "POST",
      token: admin,
      json: { sku: unique("SKU"), name, category: "shop-e2e", priceCents, costCents: 500, stock },
    });
    if (res.status !== 201) throw new Error(`product: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  product = async (id: string) => (await (await this.fetch(`/api/v1/products/${id}`)).json()) as Product;

  place(token: string, items: { productId: string; quantity: number }[], paymentMethod = "pm_card_visa", headers: Record<string, string> = {}) {
    return this.fetch("/api/v1/orders", { method: "POST", token, json: { items, shippingAddress: ADDRESS, paymentMethod }, headers });
  }

  async placeOk(token: string, items: { productId: string; quantity: number }[], paymentMethod = "pm_card_visa"): Promise<Order> {
    const res = await this.place(token, items, paymentMethod);
    if (res.status !== 202) throw new Error(`place: ${res.status} ${await res.text()}`);
    return (await res.json()) as Order;
  }

  order = (id: string, token: string) => this.json<Order>(`/api/v1/orders/${id}`, token);
  payment = (id: string, token: string) => this.json<Payment>(`/api/v1/orders/${id}/payment`, token);
  saga = (id: string, token: string) => this.json<Saga>(`/api/v1/orders/${id}/saga`, token);

  post(path: string, token: string, json?: unknown) {
    return this.fetch(path, { method: "POST", token, ...(json === undefined ? {} : { json }) });
  }

  /** eventsOf lists the types of the events about an order, in log order, with their correlation ids. */
  async eventsOf(orderId: string): Promise<{ type: string; correlation_id: string }[]> {
    return this.s.database.sql<{ type: string; correlation_id: string }[]>`
      select type, correlation_id from outbox.events where subject = ${orderId} order by position`;
  }
}

/** stepOf finds a saga step by name. */
export const stepOf = (saga: Saga, name: string) => {
  const step = saga.steps.find((s) => s.name === name);
  expect(step).toBeDefined();
  return step!;
};
