import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

/** UserRegistered is published when an account is created. It never carries the password or its hash. */
export const UserRegistered = defineEvent(
  "users",
  "user.registered",
  "A user account was created.",
  z.object({
    userId: z.uuid(),
    username: z.string(),
    displayName: z.string(),
    email: z.email(),
  }),
);

/** userEvents lists every event the users module publishes. */
export const userEvents = [UserRegistered];
