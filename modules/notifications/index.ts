import { type Appender, type Db, defineModule, rawSql } from "../../src/platform.ts";
import type { PostsApi } from "../posts/index.ts";
import type { UsersApi } from "../users/index.ts";
import { notificationEvents } from "./events.ts";
import { notifyOnEvents } from "./handlers.ts";
import { notificationsRoutes } from "./routes.ts";
import { NotificationStreams } from "./stream/index.ts";

export type { NotificationView } from "./views.ts";

/** NotificationsModuleDeps are the notifications module's dependencies. */
export interface NotificationsModuleDeps {
  db: Db;
  outbox: Appender;
  users: Pick<UsersApi, "findAccounts" | "findNotificationTargets" | "findPostSubscribers" | "listAdminIds">;
  posts: Pick<PostsApi, "getPosts">;
  /** Heartbeat interval of live streams in ms (default 15,000); also how often streams re-check. */
  heartbeatMs?: number;
  /** Open streams one user may have in one process (default 5); a new one closes the oldest. */
  maxStreamsPerUser?: number;
  /** Authors with more followers than this notify no one of their posts (default 10,000, as the timelines' fan-out). */
  celebrityThreshold?: number;
  onError?: (err: unknown, what: string) => void;
}

/**
 * createNotificationsModule builds the notifications module: notifications drafted from other
 * modules' events (follows, posts, likes, replies, orders, low stock, high fraud risk), stored once per (cause
 * event, recipient), listed and marked read by their recipient, streamed live over SSE fed by
 * Postgres NOTIFY, and handed to email and push services as public events. It also owns push
 * devices (`/users/me/devices`). `streams` is this process's live streams.
 *
 * @example const notifications = createNotificationsModule({ db, outbox, users: users.api, posts: posts.api });
 */
export function createNotificationsModule(deps: NotificationsModuleDeps) {
  const streams = new NotificationStreams(rawSql(deps.db), {
    heartbeatMs: deps.heartbeatMs ?? 15_000,
    maxStreamsPerUser: deps.maxStreamsPerUser ?? 5,
    ...(deps.onError ? { onError: deps.onError } : {}),
  });
  const def = defineModule({
    name: "notifications",
    events: notificationEvents,
    api: {},
    routes: (router) => notificationsRoutes(router, { db: deps.db, streams, recheckMs: deps.heartbeatMs ?? 15_000 }),
    subscriptions: [
      notifyOnEvents({
        users: deps.users,
        posts: deps.posts,
        outbox: deps.outbox,
        notifier: streams,
        celebrityThreshold: deps.celebrityThreshold ?? 10_000,
      }),
    ],
    stop: () => streams.stop(),
  });
  return Object.assign(def, { streams });
}
