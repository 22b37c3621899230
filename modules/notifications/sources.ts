/**
 * Where notifications come from. A source names the event it reacts to and drafts the
 * notifications one batch of those events causes; the subscription in `handlers.ts` runs every
 * source over its batch and stores all drafts in one statement. Adding a source is one
 * `source(...)` declaration here (see `paymentFailed`) and its name in `SOURCES`.
 */
import type { AnyEventDefinition, EnvelopeOf, EventEnvelope } from "../../src/platform.ts";
import { AnalyticsFraudRiskDetected } from "../analytics/events.ts";
import { InventoryLow } from "../inventory/events.ts";
import { OrderCancelled, OrderConfirmed, OrderDelivered, OrderShipped } from "../orders/events.ts";
import { PaymentFailed } from "../payments/events.ts";
import { PostCreated, PostLiked } from "../posts/events.ts";
import type { PostsApi } from "../posts/index.ts";
import { UserFollowed } from "../users/events.ts";
import type { UsersApi } from "../users/index.ts";

/** Draft is a notification a source wants stored: one per (cause, recipient) is kept. */
export interface Draft {
  cause: EventEnvelope;
  recipientId: string;
  /** snake_case. */
  type: string;
  title: string;
  message: string;
  data: Record<string, unknown>;
  /** Who caused it, when a person did: nobody is notified of their own action. */
  actorId?: string;
}

/** SourceDeps are the read APIs sources may call. */
export interface SourceDeps {
  users: Pick<UsersApi, "findAccounts" | "findPostSubscribers" | "listAdminIds">;
  posts: Pick<PostsApi, "getPosts">;
  /** Authors with more followers than this get no `new_post` notifications (see newPost). */
  celebrityThreshold: number;
}

/** Source drafts the notifications a batch of one event type causes. */
export interface Source<D extends AnyEventDefinition = AnyEventDefinition> {
  readonly on: D;
  draft(events: EnvelopeOf<D>[], deps: SourceDeps): Promise<Draft[]>;
}

/** source declares a source; `draft` gets the batch's events of that type, typed. */
export const source = <D extends AnyEventDefinition>(on: D, draft: Source<D>["draft"]): Source<D> => ({ on, draft });

const excerpt = (text: string, max = 80) => {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
};
const shortId = (id: string) => id.slice(-8);
const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`;

async function usernames(deps: SourceDeps, ids: string[]): Promise<Map<string, string>> {
  const accounts = await deps.users.findAccounts([...new Set(ids)]);
  return new Map(accounts.map((a) => [a.id, a.username]));
}

/** newFollower tells the followed user who followed them. */
export const newFollower = source(UserFollowed, async (events, deps) => {
  const names = await usernames(
    deps,
    events.map((e) => e.data.followerId),
  );
  return events.map((e) => {
    const follower = names.get(e.data.followerId) ?? "someone";
    return {
      cause: e,
      actorId: e.data.followerId,
      recipientId: e.data.followeeId,
      type: "new_follower",
      title: "New follower",
      message: `${follower} started following you`,
      data: { followerId: e.data.followerId, followerUsername: follower },
    };
  });
});

/**
 * postReplied tells a parent post's author of a reply. Listed before `newPost`: when the parent's
 * author also follows the replier, the one notification that event gives them is the reply.
 */
export const postReplied = source(PostCreated, async (events, deps) => {
  const replies = events.filter((e) => e.data.inReplyToId !== null);
  if (replies.length === 0) return [];
  const parents = await deps.posts.getPosts(replies[0]!.data.authorId, [...new Set(replies.map((e) => e.data.inReplyToId!))]);
  const parentAuthor = new Map(parents.map((p) => [p.id, p.authorId]));
  const names = await usernames(
    deps,
    replies.map((e) => e.data.authorId),
  );
  return replies.flatMap((e) => {
    const recipientId = parentAuthor.get(e.data.inReplyToId!);
    if (!recipientId) return []; // the parent was deleted meanwhile
    const who = names.get(e.data.authorId) ?? "someone";
    return [
      {
        cause: e,
        actorId: e.data.authorId,
        recipientId,
        type: "post_replied",
        title: "New reply",
        message: `${who} replied to your post: "${excerpt(e.data.content)}"`,
        data: { postId: e.data.postId, inReplyToId: e.data.inReplyToId, authorId: e.data.authorId, authorUsername: who },
      },
    ];
  });
});

/**
 * newPost tells the author's followers whose postNotifications is on: one read for every author in
 * the batch. A post by an author with more than `celebrityThreshold` followers (the same threshold
 * above which the timelines module stops fanning posts out) tells no one: a notification per
 * follower would be the fan-out storm the timelines avoid, 10,000 rows and as many email and push
 * requests per post. Their followers see the post in their home timeline, merged in when they read
 * it, as the large networks do (they notify of such accounts' posts only to people who asked for
 * that account in particular, which this network has no setting for).
 */
export const newPost = source(PostCreated, async (events, deps) => {
  const subscribers = await deps.users.findPostSubscribers(
    events.map((e) => e.data.authorId),
    deps.celebrityThreshold,
  );
  if (subscribers.length === 0) return [];
  const byAuthor = new Map<string, string[]>();
  for (const s of subscribers) {
    const list = byAuthor.get(s.authorId);
    if (list) list.push(s.followerId);
    else byAuthor.set(s.authorId, [s.followerId]);
  }
  const names = await usernames(deps, [...byAuthor.keys()]);
  return events.flatMap((e) => {
    const who = names.get(e.data.authorId) ?? "someone";
    const message = `${who} shared a new post: "${excerpt(e.data.content)}"`;
    const data = { postId: e.data.postId, authorId: e.data.authorId, authorUsername: who };
    return (byAuthor.get(e.data.authorId) ?? []).map((recipientId) => ({
      cause: e,
      actorId: e.data.authorId,
      recipientId,
      type: "new_post",
      title: "New post",
      message,
      data,
    }));
  });
});

/** postLiked tells a post's author who liked it. */
export const postLiked = source(PostLiked, async (events, deps) => {
  const names = await usernames(
    deps,
    events.map((e) => e.data.userId),
  );
  return events.map((e) => {
    const who = names.get(e.data.userId) ?? "someone";
    return {
      cause: e,
      actorId: e.data.userId,
      recipientId: e.data.authorId,
      type: "post_liked",
      title: "New like",
      message: `${who} liked your post`,
      data: { postId: e.data.postId, userId: e.data.userId, username: who },
    };
  });
});

/** orderConfirmed tells the customer their order is confirmed. */
export const orderConfirmed = source(OrderConfirmed, async (events) =>
  events.map((e) => ({
    cause: e,
    recipientId: e.data.customerId,
    type: "order_confirmed",
    title: "Order confirmed",
    message: `Your order ${shortId(e.data.orderId)} is confirmed (${money(e.data.totalCents, e.data.currency)}).`,
    data: { orderId: e.data.orderId, totalCents: e.data.totalCents, currency: e.data.currency },
  })),
);

/** CancellationReason is why an order was cancelled, as a code and in words for the customer. */
export interface CancellationReason {
  code:
    | "out_of_stock"
    | "product_unavailable"
    | "card_declined"
    | "insufficient_funds"
    | "payment_timed_out"
    | "payment_failed"
    | "customer_cancelled"
    | "cancelled_by_shop"
    | "other";
  words: string;
}

// Checked in order against the code the orders module sends (a `reasonCode` field, when it has
// one) and the reason text: the first that matches names the cause.
const REASONS: [RegExp, CancellationReason][] = [
  [/insufficient_stock|out[ _-]of[ _-]stock/i, { code: "out_of_stock", words: "out of stock" }],
  [/product_not_found|no longer exists|not[ _-]found/i, { code: "product_unavailable", words: "a product is no longer available" }],
  [/insufficient[ _-]funds/i, { code: "insufficient_funds", words: "card declined (insufficient funds)" }],
  [/declined/i, { code: "card_declined", words: "card declined" }],
  [/time[ _-]?out|timed[ _-]out/i, { code: "payment_timed_out", words: "payment timed out" }],
  [/payment[ _-]failed|payment_error/i, { code: "payment_failed", words: "payment failed" }],
  [/customer[ _-]cancel/i, { code: "customer_cancelled", words: "customer cancelled" }],
];

/**
 * cancellationReason maps an `order.cancelled` to its reason in words. System reasons (stock,
 * payment) are recognised by code or text; any other reason was typed by a person, and the
 * event's actor says who: the customer ("customer cancelled") or the shop.
 */
export function cancellationReason(e: EnvelopeOf<typeof OrderCancelled>): CancellationReason {
  const data = e.data as typeof e.data & { reasonCode?: unknown; code?: unknown };
  const code = typeof data.reasonCode === "string" ? data.reasonCode : typeof data.code === "string" ? data.code : "";
  for (const [pattern, reason] of REASONS) if (pattern.test(code)) return reason;
  for (const [pattern, reason] of REASONS) if (pattern.test(data.reason)) return reason;
  if (e.actorid === data.customerId) return { code: "customer_cancelled", words: "customer cancelled" };
  if (e.actorid) return { code: "cancelled_by_shop", words: "cancelled by the shop" };
  return { code: "other", words: "cancelled" };
}

/** orderCancelled tells the customer their order was cancelled, and why in words. */
export const orderCancelled = source(OrderCancelled, async (events) =>
  events.map((e) => {
    const reason = cancellationReason(e);
    const typed = reason.code === "customer_cancelled" || reason.code === "cancelled_by_shop" || reason.code === "other";
    return {
      cause: e,
      recipientId: e.data.customerId,
      type: "order_cancelled",
      title: "Order cancelled",
      message: `Your order ${shortId(e.data.orderId)} was cancelled: ${reason.words}${typed && e.data.reason ? ` ("${excerpt(e.data.reason, 120)}")` : ""}.`,
      data: { orderId: e.data.orderId, reason: reason.words, reasonCode: reason.code, detail: e.data.reason },
    };
  }),
);

/** orderShipped tells the customer their order left, with the carrier and tracking number. */
export const orderShipped = source(OrderShipped, async (events) =>
  events.map((e) => ({
    cause: e,
    recipientId: e.data.customerId,
    type: "order_shipped",
    title: "Order shipped",
    message: `Your order ${shortId(e.data.orderId)} has shipped with ${e.data.carrier}, tracking number ${e.data.trackingNumber}.`,
    data: { orderId: e.data.orderId, trackingNumber: e.data.trackingNumber, carrier: e.data.carrier },
  })),
);

/** orderDelivered tells the customer their order arrived. */
export const orderDelivered = source(OrderDelivered, async (events) =>
  events.map((e) => ({
    cause: e,
    recipientId: e.data.customerId,
    type: "order_delivered",
    title: "Order delivered",
    message: `Your order ${shortId(e.data.orderId)} was delivered.`,
    data: { orderId: e.data.orderId },
  })),
);

/** inventoryLow tells every admin that a product is running low. */
export const inventoryLow = source(InventoryLow, async (events, deps) => {
  const admins = await deps.users.listAdminIds();
  return events.flatMap((e) =>
    admins.map((recipientId) => ({
      cause: e,
      recipientId,
      type: "inventory_low",
      title: "Low stock",
      message: `${e.data.name} (${e.data.sku}) is low: ${e.data.available} available, threshold ${e.data.threshold}.`,
      data: { productId: e.data.productId, sku: e.data.sku, name: e.data.name, available: e.data.available, threshold: e.data.threshold },
    })),
  );
});

/**
 * fraudRiskHigh tells every admin that a user's purchases in one hour reached HIGH_RISK (more
 * than 10 purchases and over 5,000 in total); MEDIUM_RISK is left to the risk list.
 */
export const fraudRiskHigh = source(AnalyticsFraudRiskDetected, async (events, deps) => {
  const high = events.filter((e) => e.data.level === "HIGH_RISK");
  if (high.length === 0) return [];
  const admins = await deps.users.listAdminIds();
  return high.flatMap((e) =>
    admins.map((recipientId) => ({
      cause: e,
      recipientId,
      type: "fraud_risk_high",
      title: "High fraud risk",
      message: `User ${e.data.userId} made ${e.data.purchaseCount} purchases totalling ${(e.data.totalCents / 100).toFixed(2)} from ${e.data.countryCount} ${e.data.countryCount === 1 ? "country" : "countries"} in the hour from ${e.data.windowStart}.`,
      data: {
        userId: e.data.userId,
        windowStart: e.data.windowStart,
        level: e.data.level,
        purchaseCount: e.data.purchaseCount,
        totalCents: e.data.totalCents,
        averageCents: e.data.averageCents,
        countryCount: e.data.countryCount,
      },
    })),
  );
});

/** paymentFailed tells the customer their card was refused (the saga then cancels the order, told separately). */
export const paymentFailed = source(PaymentFailed, async (events) =>
  events.map((e) => ({
    cause: e,
    recipientId: e.data.customerId,
    type: "payment_failed",
    title: "Payment failed",
    message: `The payment of ${money(e.data.amountCents, e.data.currency)} for your order ${shortId(e.data.orderId)} failed: ${e.data.message}`,
    data: { orderId: e.data.orderId, paymentId: e.data.paymentId, reason: e.data.reason, amountCents: e.data.amountCents, currency: e.data.currency },
  })),
);

/**
 * SOURCES lists every source in precedence order: when two sources draft for the same
 * (event, recipient), the earlier one's notification is the one kept.
 */
export const SOURCES: readonly Source[] = [
  newFollower,
  postReplied,
  newPost,
  postLiked,
  orderConfirmed,
  orderCancelled,
  paymentFailed,
  orderShipped,
  orderDelivered,
  inventoryLow,
  fraudRiskHigh,
] as unknown as readonly Source[];
