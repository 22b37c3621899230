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

/** UserUpdated is published when a user changes their public profile (display name, bio). */
export const UserUpdated = defineEvent({
  source: "users",
  type: "user.updated",
  visibility: "public",
  description: "A user's public profile changed; carries the profile as it now is.",
  schema: z.object({
    userId: z.uuid(),
    username: z.string(),
    displayName: z.string(),
    bio: z.string(),
  }),
});

/**
 * UserFollowed is published when one user starts following another; its subject is the
 * follower, so a follower's follows and unfollows keep their order in partitioned consumers.
 */
export const UserFollowed = defineEvent({
  source: "users",
  type: "user.followed",
  visibility: "public",
  description: "A user started following another.",
  schema: z.object({ followerId: z.uuid(), followeeId: z.uuid() }),
});

/** UserUnfollowed is published when one user stops following another; subject is the follower. */
export const UserUnfollowed = defineEvent({
  source: "users",
  type: "user.unfollowed",
  visibility: "public",
  description: "A user stopped following another.",
  schema: z.object({ followerId: z.uuid(), followeeId: z.uuid() }),
});

/** userEvents lists every event the users module publishes. */
export const userEvents = [UserRegistered, UserUpdated, UserFollowed, UserUnfollowed];
