import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

/**
 * UserRegistered is published when an account is created: public, so other modules and the
 * EventBridge and Kinesis consumers see it. It never carries the password or its hash.
 */
export const UserRegistered = defineEvent({
  source: "users",
  type: "user.registered",
  visibility: "public",
  description: "A user account was created.",
  schema: z.object({
    userId: z.uuid(),
    username: z.string(),
    displayName: z.string(),
    email: z.email(),
  }),
});

/** userEvents lists every event the users module publishes. */
export const userEvents = [UserRegistered];
