/** NotificationView is a notification as its recipient sees it. */
export interface NotificationView {
  id: string;
  /** snake_case, e.g. `new_follower`, `order_shipped`. */
  type: string;
  title: string;
  message: string;
  data: Record<string, unknown>;
  createdAt: string;
  read: boolean;
}

/** NotificationRow is a notification as the queries read it. */
export interface NotificationRow {
  id: string;
  seq: string;
  type: string;
  title: string;
  message: string;
  data: Record<string, unknown>;
  created_at: string | Date;
  read_at: string | Date | null;
}

/** toView maps a row to the recipient's view. */
export const toView = (r: NotificationRow): NotificationView => ({
  id: r.id,
  type: r.type,
  title: r.title,
  message: r.message,
  data: r.data,
  createdAt: new Date(r.created_at).toISOString(),
  read: r.read_at !== null,
});

/** Device is a registered push target as its owner sees it. */
export interface Device {
  id: string;
  platform: "ios" | "android" | "web";
  token: string;
  createdAt: string;
}
