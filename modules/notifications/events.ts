import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

/**
 * NotificationEmailRequested asks the mail service behind EventBridge (SES in the course
 * material) to email a notification; published only when the recipient's emailNotifications is
 * on. This process never sends mail. Subject is the recipient's user id.
 */
export const NotificationEmailRequested = defineEvent({
  source: "notifications",
  type: "notification.email_requested",
  visibility: "public",
  description: "A notification should be emailed to its recipient (emailNotifications is on).",
  schema: z.object({
    /** The address to send to. */
    recipient: z.email(),
    subject: z.string(),
    text: z.string(),
    userId: z.uuid(),
    notificationId: z.uuid(),
    notificationType: z.string(),
  }),
});

/**
 * NotificationPushRequested asks the push service behind EventBridge (SNS mobile push in the
 * course material) to push a notification to one registered device: one event per device.
 * Subject is the recipient's user id.
 */
export const NotificationPushRequested = defineEvent({
  source: "notifications",
  type: "notification.push_requested",
  visibility: "public",
  description: "A notification should be pushed to one of its recipient's registered devices.",
  schema: z.object({
    userId: z.uuid(),
    deviceId: z.uuid(),
    platform: z.enum(["ios", "android", "web"]),
    token: z.string(),
    notificationId: z.uuid(),
    notificationType: z.string(),
    title: z.string(),
    message: z.string(),
    data: z.record(z.string(), z.unknown()),
  }),
});

/** notificationEvents lists every event the notifications module publishes. */
export const notificationEvents = [NotificationEmailRequested, NotificationPushRequested];
