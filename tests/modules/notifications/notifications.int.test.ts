import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { randomUUIDv7 } from "bun";
import { AnalyticsFraudRiskDetected } from "../../../modules/analytics/events.ts";
import { OrderCancelled, OrderConfirmed, OrderDelivered, OrderShipped } from "../../../modules/orders/events.ts";
import { PaymentFailed } from "../../../modules/payments/events.ts";
import type { NewEvent } from "../../../src/platform.ts";
import { eventually } from "../../support/eventually.ts";
import { expectProblem } from "../../support/http.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { type QuickUser, quickUsers } from "../../support/social.ts";

// Workers on: notifications come from the notify subscription reacting to real events.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ WORKER_POLL_MS: "100" });
});
afterAll(() => s.close());

interface Notification {
  id: string;
  type: string;
  title: string;
  message: string;
  data: Record<string, unknown>;
  createdAt: string;
  read: boolean;
}
type Page = { items: Notification[]; nextCursor: string | null };

const as = (u: { token: string }, path: string, init: RequestInit & { json?: unknown } = {}) => s.request(`/api/v1${path}`, { ...init, token: u.token });
const ok = async <T>(res: Response | Promise<Response>, status = 200): Promise<T> => {
  const r = await res;
  const text = await r.text();
  expect({ status: r.status, text }).toMatchObject({ status });
  return (text ? JSON.parse(text) : undefined) as T;
};
const follow = async (a: QuickUser, b: QuickUser, method = "PUT") => expect((await as(a, `/users/${b.id}/follow`, { method })).status).toBe(204);
const post = async (u: QuickUser, content: string, inReplyToId?: string) =>
  (await ok<{ id: string }>(as(u, "/posts", { method: "POST", json: { content, ...(inReplyToId ? { inReplyToId } : {}) } }), 201)).id;
const list = (u: { token: string }, query = "") => ok<Page>(as(u, `/notifications${query}`));
const all = async (u: { token: string }) => (await list(u, "?limit=100")).items;
const unread = async (u: { token: string }) => (await ok<{ count: number }>(as(u, "/notifications/unread-count"))).count;
/** waitFor polls the user's notifications until `n` have arrived. */
const waitFor = (u: { token: string }, n: number, type?: string) =>
  eventually(async () => {
    const items = (await all(u)).filter((i) => !type || i.type === type);
    if (items.length < n) return false;
    return items;
  }, 10_000);
const append = (events: NewEvent[]) => s.database.db.transaction((tx) => s.outbox.appender.append(tx, events));
/** settled waits until the notify subscription has handled everything appended so far. */
const settled = () =>
  eventually(async () => {
    const [row] = await s.database.sql<{ behind: number }[]>`
      select count(*)::int as behind from outbox.events e
      join outbox.subscriptions sub on sub.name = 'notifications.notify'
        and sub.partition = ((hashtext(e.subject)::bigint % sub.partitions) + sub.partitions) % sub.partitions
      where e.type in ('user.followed', 'post.created', 'post.liked', 'order.confirmed', 'order.cancelled', 'order.shipped', 'order.delivered', 'inventory.low', 'analytics.fraud_risk_detected')
        and (sub.last_transaction_id, sub.last_position) < (e.transaction_id, e.position)`;
    return row!.behind === 0;
  }, 10_000);
const requested = async (type: string, userId: string) => [
  ...(await s.database.sql<{ data: Record<string, unknown>; causationid: string }[]>`
    select data, causation_id::text as causationid from outbox.events where type = ${type} and subject = ${userId} order by position`),
];

describe("notification sources", () => {
  it("tells the followed user who followed them, and nobody else", async () => {
    const [a, b] = await quickUsers(s, 2, "fol");
    await follow(b!, a!);
    const [n] = await waitFor(a!, 1);
    expect(n).toMatchObject({ type: "new_follower", title: "New follower", read: false, data: { followerId: b!.id, followerUsername: b!.username } });
    expect(n!.message).toBe(`${b!.username} started following you`);
    expect(Object.keys(n!).sort()).toEqual(["createdAt", "data", "id", "message", "read", "title", "type"]);
    await settled();
    expect(await all(b!)).toEqual([]);
    expect(await unread(a!)).toBe(1);
  });

  it("tells an author's followers of a new post when their postNotifications is on, never the author", async () => {
    const [author, on, off, stranger] = await quickUsers(s, 4, "np");
    await ok(as(off!, "/users/me/preferences", { method: "PATCH", json: { postNotifications: false } }));
    await follow(on!, author!);
    await follow(off!, author!);
    const postId = await post(author!, "hello followers, this is my first post");
    const [n] = await waitFor(on!, 1, "new_post");
    expect(n).toMatchObject({ type: "new_post", data: { postId, authorId: author!.id, authorUsername: author!.username } });
    expect(n!.message).toContain(`${author!.username} shared a new post`);
    await settled();
    expect((await all(off!)).filter((i) => i.type === "new_post")).toEqual([]);
    expect(await all(stranger!)).toEqual([]);
    expect((await all(author!)).map((i) => i.type)).toEqual(["new_follower", "new_follower"]);
  });

  it("tells a post's author who liked it, but not of their own like", async () => {
    const [author, fan] = await quickUsers(s, 2, "lk");
    const postId = await post(author!, "like me");
    expect((await as(author!, `/posts/${postId}/like`, { method: "PUT" })).status).toBe(204);
    expect((await as(fan!, `/posts/${postId}/like`, { method: "PUT" })).status).toBe(204);
    const [n] = await waitFor(author!, 1, "post_liked");
    expect(n).toMatchObject({ type: "post_liked", data: { postId, userId: fan!.id, username: fan!.username }, message: `${fan!.username} liked your post` });
    await settled();
    expect((await all(author!)).filter((i) => i.type === "post_liked").length).toBe(1);
    expect(await all(fan!)).toEqual([]);
  });

  it("tells a parent's author of a reply, once and as a reply even when they follow the replier; a reply to oneself tells nobody", async () => {
    const [author, replier, follower] = await quickUsers(s, 3, "rp");
    await follow(author!, replier!);
    await follow(follower!, replier!);
    await follow(follower!, author!);
    const parent = await post(author!, "what do you think?");
    const reply = await post(replier!, "I think it is great", parent);
    const selfReply = await post(author!, "replying to myself", parent);
    const replies = await waitFor(author!, 1, "post_replied");
    expect(replies[0]).toMatchObject({ type: "post_replied", data: { postId: reply, inReplyToId: parent, authorId: replier!.id } });
    expect(replies[0]!.message).toContain(`${replier!.username} replied to your post: "I think it is great"`);
    await settled();
    const mine = await all(author!);
    // One notification for the reply (not a new_post as well), none for the self-reply.
    expect(mine.filter((i) => i.data.postId === reply).map((i) => i.type)).toEqual(["post_replied"]);
    expect(mine.filter((i) => i.data.postId === selfReply)).toEqual([]);
    // The follower of both hears of both posts (replies are posts), as new posts.
    const heard = (await all(follower!)).filter((i) => i.type === "new_post").map((i) => i.data.postId);
    expect(heard.sort()).toEqual([parent, reply, selfReply].sort());
  });
});

describe("reading notifications", () => {
  it("lists newest first, pages stably while notifications arrive, and filters the unread", async () => {
    const [me, ...fans] = await quickUsers(s, 8, "pg");
    for (const f of fans.slice(0, 5)) await follow(f, me!);
    const first = await waitFor(me!, 5);
    // Follows by different people may be handled in parallel partitions: the order is arrival order.
    expect(first.map((i) => i.data.followerId).sort()).toEqual(
      fans
        .slice(0, 5)
        .map((f) => f.id)
        .sort(),
    );
    const p1 = await list(me!, "?limit=2");
    expect(p1.items.map((i) => i.id)).toEqual(first.slice(0, 2).map((i) => i.id));
    // Two arrive between the pages: the walk goes on where it was, each old one exactly once.
    await follow(fans[5]!, me!);
    await follow(fans[6]!, me!);
    await waitFor(me!, 7);
    const rest: Notification[] = [];
    let cursor = p1.nextCursor;
    while (cursor) {
      const p = await list(me!, `?limit=2&cursor=${cursor}`);
      rest.push(...p.items);
      cursor = p.nextCursor;
    }
    expect([...p1.items, ...rest].map((i) => i.id)).toEqual(first.map((i) => i.id));

    expect(await unread(me!)).toBe(7);
    const read = await ok<Notification>(as(me!, `/notifications/${first[1]!.id}/read`, { method: "POST" }));
    expect(read).toMatchObject({ id: first[1]!.id, read: true });
    // Again: still read, nothing else changes.
    expect(await ok<Notification>(as(me!, `/notifications/${first[1]!.id}/read`, { method: "POST" }))).toEqual(read);
    expect(await unread(me!)).toBe(6);
    const unreadOnly = (await list(me!, "?unread=true&limit=100")).items;
    expect(unreadOnly.length).toBe(6);
    expect(unreadOnly.map((i) => i.id)).not.toContain(first[1]!.id);
    expect((await list(me!, "?unread=false&limit=100")).items.length).toBe(7);

    expect(await ok<{ marked: number }>(as(me!, "/notifications/read-all", { method: "POST" }))).toEqual({ marked: 6 });
    expect(await unread(me!)).toBe(0);
    expect((await list(me!, "?unread=true")).items).toEqual([]);
    expect(await ok<{ marked: number }>(as(me!, "/notifications/read-all", { method: "POST" }))).toEqual({ marked: 0 });
    expect((await all(me!)).every((i) => i.read)).toBe(true);
  });

  it("is only ever the caller's own: another's notification can be neither read nor marked", async () => {
    const [alice, bob, carol] = await quickUsers(s, 3, "pv");
    await follow(carol!, alice!);
    const [n] = await waitFor(alice!, 1);
    // Bob sees only his own (none), and cannot mark Alice's: not found, as if it did not exist.
    expect(await all(bob!)).toEqual([]);
    await expectProblem(await as(bob!, `/notifications/${n!.id}/read`, { method: "POST" }), 404, "NOTIFICATIONS.NOT_FOUND");
    await ok(as(bob!, "/notifications/read-all", { method: "POST" }));
    expect(await unread(alice!)).toBe(1);
    expect(await unread(bob!)).toBe(0);
    expect((await all(alice!))[0]!.read).toBe(false);
    // No token, no notifications; bad input is a 400, never a 500.
    for (const [method, path] of [
      ["GET", "/notifications"],
      ["GET", "/notifications/unread-count"],
      ["POST", `/notifications/${n!.id}/read`],
      ["POST", "/notifications/read-all"],
      ["GET", "/notifications/stream"],
      ["POST", "/users/me/devices"],
      ["DELETE", `/users/me/devices/${randomUUIDv7()}`],
    ] as const) {
      await expectProblem(await s.request(`/api/v1${path}`, { method }), 401, "AUTH.MISSING_TOKEN");
    }
    await expectProblem(await as(alice!, "/notifications/not-a-uuid/read", { method: "POST" }), 400, "VALIDATION.FAILED");
    await expectProblem(await as(alice!, "/notifications?cursor=garbage"), 400, "PAGINATION.INVALID_CURSOR");
    await expectProblem(await as(alice!, "/notifications?unread=maybe"), 400, "VALIDATION.FAILED");
    await expectProblem(await as(alice!, `/notifications/${randomUUIDv7()}/read`, { method: "POST" }), 404, "NOTIFICATIONS.NOT_FOUND");
  });
});

describe("devices, email and push", () => {
  it("registers a device idempotently per token and removes only the caller's own", async () => {
    const [alice, bob] = await quickUsers(s, 2, "dv");
    const token = `tok-${randomUUIDv7()}`;
    const d1 = await ok<{ id: string; platform: string; token: string }>(
      as(alice!, "/users/me/devices", { method: "POST", json: { platform: "ios", token } }),
      201,
    );
    expect(d1).toMatchObject({ platform: "ios", token });
    const again = await ok<{ id: string }>(as(alice!, "/users/me/devices", { method: "POST", json: { platform: "ios", token } }), 201);
    expect(again.id).toBe(d1.id);
    expect((await s.database.sql`select 1 from notifications.devices where token = ${token}`).length).toBe(1);
    await expectProblem(await as(alice!, "/users/me/devices", { method: "POST", json: { platform: "blackberry", token } }), 400, "VALIDATION.FAILED");
    await expectProblem(await as(alice!, "/users/me/devices", { method: "POST", json: { platform: "web" } }), 400, "VALIDATION.FAILED");
    // Bob cannot remove Alice's device: not found, and it stays.
    await expectProblem(await as(bob!, `/users/me/devices/${d1.id}`, { method: "DELETE" }), 404, "NOTIFICATIONS.DEVICE_NOT_FOUND");
    expect((await s.database.sql`select 1 from notifications.devices where id = ${d1.id}`).length).toBe(1);
    expect((await as(alice!, `/users/me/devices/${d1.id}`, { method: "DELETE" })).status).toBe(204);
    await expectProblem(await as(alice!, `/users/me/devices/${d1.id}`, { method: "DELETE" }), 404, "NOTIFICATIONS.DEVICE_NOT_FOUND");
    await expectProblem(await as(alice!, "/users/me/devices/nope", { method: "DELETE" }), 400, "VALIDATION.FAILED");
    // A token registered by another account moves to it, under a new id: the old owner cannot remove it.
    const shared = `tok-${randomUUIDv7()}`;
    const mineFirst = await ok<{ id: string }>(as(alice!, "/users/me/devices", { method: "POST", json: { platform: "android", token: shared } }), 201);
    const bobs = await ok<{ id: string }>(as(bob!, "/users/me/devices", { method: "POST", json: { platform: "android", token: shared } }), 201);
    expect(bobs.id).not.toBe(mineFirst.id);
    await expectProblem(await as(alice!, `/users/me/devices/${bobs.id}`, { method: "DELETE" }), 404, "NOTIFICATIONS.DEVICE_NOT_FOUND");
    expect(
      (await s.database.sql<{ user_id: string }[]>`select user_id::text from notifications.devices where token = ${shared}`).map((r) => r.user_id),
    ).toEqual([bob!.id]);
  });

  it("requests an email only when the recipient's emailNotifications is on, and a push per registered device", async () => {
    const [withEmail, without, actor] = await quickUsers(s, 3, "em");
    await ok(as(without!, "/users/me/preferences", { method: "PATCH", json: { emailNotifications: false } }));
    const tokens = [`ios-${randomUUIDv7()}`, `web-${randomUUIDv7()}`];
    const devices = [
      await ok<{ id: string }>(as(withEmail!, "/users/me/devices", { method: "POST", json: { platform: "ios", token: tokens[0] } }), 201),
      await ok<{ id: string }>(as(withEmail!, "/users/me/devices", { method: "POST", json: { platform: "web", token: tokens[1] } }), 201),
    ];
    await follow(actor!, withEmail!);
    await follow(actor!, without!);
    const [n] = await waitFor(withEmail!, 1);
    await waitFor(without!, 1);
    await settled();
    const emails = await requested("notification.email_requested", withEmail!.id);
    expect(emails.map((e) => e.data)).toEqual([
      {
        recipient: `${withEmail!.username}@example.com`,
        subject: "New follower",
        text: `${actor!.username} started following you`,
        userId: withEmail!.id,
        notificationId: n!.id,
        notificationType: "new_follower",
      },
    ]);
    const pushes = await requested("notification.push_requested", withEmail!.id);
    expect(pushes.map((e) => [e.data.deviceId, e.data.token, e.data.notificationId]).sort()).toEqual(
      [
        [devices[0]!.id, tokens[0], n!.id],
        [devices[1]!.id, tokens[1], n!.id],
      ].sort(),
    );
    // Caused by the follow, so lineage walks from the follow to the requests.
    const [cause] = await s.database.sql<
      { id: string }[]
    >`select id::text from outbox.events where type = 'user.followed' and data->>'followeeId' = ${withEmail!.id}`;
    expect(new Set([...emails, ...pushes].map((e) => e.causationid))).toEqual(new Set([cause!.id]));
    expect(await requested("notification.email_requested", without!.id)).toEqual([]);
    expect(await requested("notification.push_requested", without!.id)).toEqual([]);
    // A removed device gets no more pushes.
    expect((await as(withEmail!, `/users/me/devices/${devices[0]!.id}`, { method: "DELETE" })).status).toBe(204);
    const [other] = await quickUsers(s, 1, "em2");
    await follow(other!, withEmail!);
    await waitFor(withEmail!, 2);
    await settled();
    const after = await requested("notification.push_requested", withEmail!.id);
    expect(after.length).toBe(3);
    expect(after.at(-1)!.data.deviceId).toBe(devices[1]!.id);
  });

  it("stores, emails and pushes nothing more when every event is delivered a second time", async () => {
    const [a, b, c] = await quickUsers(s, 3, "dup");
    await ok(as(a!, "/users/me/devices", { method: "POST", json: { platform: "android", token: `dup-${randomUUIDv7()}` } }), 201);
    await follow(b!, a!);
    await follow(c!, a!);
    const postId = await post(a!, "a post to like and reply to");
    await follow(a!, b!);
    const reply = await post(b!, "a reply", postId);
    expect((await as(c!, `/posts/${postId}/like`, { method: "PUT" })).status).toBe(204);
    await append([OrderShipped.with({ orderId: randomUUIDv7(), customerId: a!.id, trackingNumber: "1Z999", carrier: "UPS" }, { subject: randomUUIDv7() })]);
    await waitFor(a!, 5);
    await settled();
    const snapshot = async () => ({
      notifications: (
        await s.database.sql<
          { k: string }[]
        >`select cause_event_id || '/' || recipient_id || '/' || type || '/' || seq as k from notifications.notifications order by 1`
      ).map((r) => r.k),
      requests: (await s.database.sql<{ n: number }[]>`select count(*)::int as n from outbox.events where type like 'notification.%'`)[0]!.n,
    });
    const before = await snapshot();
    expect(before.requests).toBeGreaterThan(0);
    expect(before.notifications.some((k) => k.includes("post_replied"))).toBe(true);
    // The whole log again, as a replay or a redelivery after a crash would hand it over.
    const admin = { token: await s.adminToken() };
    await ok(as(admin, "/admin/subscriptions/notifications.notify/replay", { method: "POST", json: { from: 0 } }));
    await eventually(async () => {
      const [row] = await s.database.sql<
        { n: number }[]
      >`select count(*)::int as n from outbox.subscriptions where name = 'notifications.notify' and last_position > 0`;
      return row!.n > 0;
    });
    await settled();
    expect(await snapshot()).toEqual(before);
    // Handled again without a failure: nothing was dead-lettered on the way.
    expect((await s.database.sql`select 1 from outbox.dead_letters where subscription = 'notifications.notify'`).length).toBe(0);
    expect(reply).toBeString();
  });
});

describe("commerce sources", () => {
  const customerEvents = async (customer: QuickUser, events: NewEvent[], n: number) => {
    await append(events);
    return (await waitFor(customer, n)).reverse();
  };

  it("tells the customer of confirmation, cancellation (the reason in words), shipping (tracking) and delivery", async () => {
    const [customer, other] = await quickUsers(s, 2, "shop");
    const id = () => randomUUIDv7();
    const orders = [id(), id(), id(), id(), id(), id(), id()];
    const at = (orderId: string) => ({ subject: orderId });
    const got = await customerEvents(
      customer!,
      [
        OrderConfirmed.with({ orderId: orders[0]!, customerId: customer!.id, totalCents: 12_345, currency: "USD" }, at(orders[0]!)),
        OrderShipped.with({ orderId: orders[0]!, customerId: customer!.id, trackingNumber: "1Z999AA10123456784", carrier: "UPS" }, at(orders[0]!)),
        OrderDelivered.with({ orderId: orders[0]!, customerId: customer!.id }, at(orders[0]!)),
        OrderCancelled.with(
          { orderId: orders[1]!, customerId: customer!.id, reason: "out of stock: p1 (requested 5, available 2)", previousStatus: "PENDING" },
          at(orders[1]!),
        ),
        OrderCancelled.with({ orderId: orders[2]!, customerId: customer!.id, reason: "card_declined", previousStatus: "PENDING" }, at(orders[2]!)),
        OrderCancelled.with(
          { orderId: orders[3]!, customerId: customer!.id, reason: "payment timed out after 30 s", previousStatus: "PENDING" },
          at(orders[3]!),
        ),
        OrderCancelled.with({ orderId: orders[4]!, customerId: customer!.id, reason: "insufficient_funds", previousStatus: "PENDING" }, at(orders[4]!)),
      ],
      7,
    );
    const byOrder = (o: string, type: string) => got.find((n) => n.data.orderId === o && n.type === type)!;
    expect(byOrder(orders[0]!, "order_confirmed").message).toContain("123.45 USD");
    expect(byOrder(orders[0]!, "order_shipped")).toMatchObject({ data: { trackingNumber: "1Z999AA10123456784", carrier: "UPS" } });
    expect(byOrder(orders[0]!, "order_shipped").message).toContain("UPS, tracking number 1Z999AA10123456784");
    expect(byOrder(orders[0]!, "order_delivered").title).toBe("Order delivered");
    expect(byOrder(orders[1]!, "order_cancelled").data).toMatchObject({ reason: "out of stock", reasonCode: "out_of_stock" });
    expect(byOrder(orders[1]!, "order_cancelled").message).toContain("cancelled: out of stock");
    expect(byOrder(orders[2]!, "order_cancelled").data).toMatchObject({ reason: "card declined", reasonCode: "card_declined" });
    expect(byOrder(orders[3]!, "order_cancelled").data).toMatchObject({ reason: "payment timed out", reasonCode: "payment_timed_out" });
    expect(byOrder(orders[4]!, "order_cancelled").data).toMatchObject({ reasonCode: "insufficient_funds" });
    await settled();
    expect(await all(other!)).toEqual([]);
  });

  it("tells the customer of a failed payment, with the amount and the processor's words", async () => {
    const [customer, other] = await quickUsers(s, 2, "payfail");
    const orderId = randomUUIDv7();
    const failed = PaymentFailed.with(
      {
        orderId,
        customerId: customer!.id,
        paymentId: randomUUIDv7(),
        amountCents: 4_200,
        currency: "USD",
        reason: "card_declined",
        message: "Your card was declined.",
      },
      { subject: orderId },
    );
    const [note] = await customerEvents(customer!, [failed], 1);
    expect(note).toMatchObject({ type: "payment_failed", title: "Payment failed", data: { orderId, reason: "card_declined", amountCents: 4_200 } });
    expect(note!.message).toContain("42.00 USD");
    expect(note!.message).toContain("Your card was declined.");
    await settled();
    expect(await all(other!)).toEqual([]);
  });

  it("runs the shop over HTTP: low stock tells every admin; confirmed, shipped, delivered, out of stock and a customer's cancellation tell the customer", async () => {
    const adminToken = await s.adminToken();
    const admin = { token: adminToken };
    const [customer, secondAdmin, plain] = await quickUsers(s, 3, "flow");
    await s.database.sql`update users.accounts set role = 'admin' where id = ${secondAdmin!.id}`;
    const product = await ok<{ id: string }>(
      as(admin, "/products", {
        method: "POST",
        json: { sku: `SKU-${randomUUIDv7()}`, name: "Widget", category: "tools", priceCents: 500, costCents: 200, stock: 5, lowStockThreshold: 3 },
      }),
      201,
    );
    const address = { street: "1 Main St", city: "Springfield", state: "IL", zipCode: "62701", country: "US" };
    const place = (quantity: number) =>
      ok<{ id: string; status: string }>(
        as(customer!, "/orders", {
          method: "POST",
          json: { items: [{ productId: product.id, quantity }], shippingAddress: address, paymentMethod: "pm_card_visa" },
          headers: { prefer: "wait=10" },
        }),
        201,
      );
    const first = await place(3);
    expect(first.status).toBe("CONFIRMED");
    const confirmed = (await waitFor(customer!, 1, "order_confirmed"))[0]!;
    expect(confirmed.data).toMatchObject({ orderId: first.id, totalCents: 1500, currency: expect.any(String) });
    // 5 - 3 = 2 available, down through the threshold of 3: every admin hears, nobody else.
    const [adminId] = await s.database.sql<{ id: string }[]>`select id::text from users.accounts where username = 'root_admin'`;
    const low = await eventually(async () => {
      const rows = await s.database.sql<{ recipient_id: string; message: string }[]>`
        select recipient_id::text, message from notifications.notifications where type = 'inventory_low' and data->>'productId' = ${product.id}`;
      return rows.length >= 2 ? rows : false;
    }, 10_000);
    expect(low.map((r) => r.recipient_id).sort()).toEqual([adminId!.id, secondAdmin!.id].sort());
    expect(low[0]!.message).toContain("Widget");
    expect((await waitFor(secondAdmin!, 1, "inventory_low"))[0]!.data).toMatchObject({ productId: product.id, available: 2, threshold: 3 });

    await ok(as(admin, `/orders/${first.id}/ship`, { method: "POST", json: { trackingNumber: "TRACK-42", carrier: "DHL" } }));
    const shipped = (await waitFor(customer!, 1, "order_shipped"))[0]!;
    expect(shipped.data).toEqual({ orderId: first.id, trackingNumber: "TRACK-42", carrier: "DHL" });
    await ok(as(admin, `/orders/${first.id}/deliver`, { method: "POST" }));
    expect((await waitFor(customer!, 1, "order_delivered"))[0]!.data).toEqual({ orderId: first.id });

    const short = await place(4);
    expect(short.status).toBe("CANCELLED");
    const cancelled = await eventually(
      async () => (await all(customer!)).find((n) => n.type === "order_cancelled" && n.data.orderId === short.id) ?? false,
      10_000,
    );
    expect(cancelled.data).toMatchObject({ reason: "out of stock", reasonCode: "out_of_stock" });

    const mine = await place(1);
    expect(mine.status).toBe("CONFIRMED");
    await ok(as(customer!, `/orders/${mine.id}/cancel`, { method: "POST", json: { reason: "changed my mind" } }));
    const own = await eventually(async () => (await all(customer!)).find((n) => n.type === "order_cancelled" && n.data.orderId === mine.id) ?? false, 10_000);
    expect(own.data).toMatchObject({ reason: "customer cancelled", reasonCode: "customer_cancelled", detail: "changed my mind" });
    expect(own.message).toContain('customer cancelled ("changed my mind")');
    await settled();
    expect((await all(plain!)).length).toBe(0);
    expect((await all(customer!)).filter((n) => n.type === "inventory_low")).toEqual([]);
  });
});

describe("analytics sources", () => {
  it("tells every admin, once, when a user-hour reaches HIGH_RISK; MEDIUM_RISK tells nobody; a redelivery adds nothing", async () => {
    const [secondAdmin, plain] = await quickUsers(s, 2, "risk");
    await s.database.sql`update users.accounts set role = 'admin' where id = ${secondAdmin!.id}`;
    const admins = (await s.database.sql<{ id: string }[]>`select id::text from users.accounts where role = 'admin'`).map((r) => r.id);
    expect(admins.length).toBeGreaterThanOrEqual(2);
    const risky = `shopper-${randomUUIDv7()}`;
    const hour = "2026-12-03T09:00:00.000Z";
    const detected = (level: "MEDIUM_RISK" | "HIGH_RISK", purchaseCount: number, totalCents: number) =>
      AnalyticsFraudRiskDetected.with(
        { userId: risky, windowStart: hour, level, purchaseCount, totalCents, averageCents: Math.round(totalCents / purchaseCount), countryCount: 1 },
        { subject: risky },
      );
    const [, high] = await append([detected("MEDIUM_RISK", 3, 250_000), detected("HIGH_RISK", 12, 612_345)]);
    const notes = async () => [
      ...(await s.database.sql<{ recipient_id: string; cause_event_id: string; title: string; message: string; data: Record<string, unknown> }[]>`
        select recipient_id::text, cause_event_id::text, title, message, data from notifications.notifications where type = 'fraud_risk_high' and data->>'userId' = ${risky}`),
    ];
    await eventually(async () => (await notes()).length >= admins.length, 10_000);
    await settled();
    const got = await notes();
    expect(got.map((n) => n.recipient_id).sort()).toEqual([...admins].sort());
    expect(new Set(got.map((n) => n.cause_event_id))).toEqual(new Set([high!.id]));
    expect(got[0]).toMatchObject({
      title: "High fraud risk",
      data: { userId: risky, windowStart: hour, level: "HIGH_RISK", purchaseCount: 12, totalCents: 612_345, averageCents: 51_029, countryCount: 1 },
    });
    expect(got[0]!.message).toBe(`User ${risky} made 12 purchases totalling 6123.45 from 1 country in the hour from ${hour}.`);
    expect((await waitFor(secondAdmin!, 1, "fraud_risk_high"))[0]!.data.userId).toBe(risky);
    expect(await all(plain!)).toEqual([]);

    // Delivered again from the start (a replay, or a crash before the checkpoint): nothing more.
    const admin = { token: await s.adminToken() };
    await ok(as(admin, "/admin/subscriptions/notifications.notify/replay", { method: "POST", json: { from: 0 } }));
    await settled();
    expect((await notes()).length).toBe(admins.length);
  });
});
