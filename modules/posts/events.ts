import { z } from "zod";
import { defineEvent } from "../../src/platform.ts";

/**
 * PostCreated is published when a post (or a reply) is published; its subject is the post id.
 * It carries the whole post, so that timelines and search need no read back.
 */
export const PostCreated = defineEvent({
  source: "posts",
  type: "post.created",
  visibility: "public",
  description: "A post or reply was published.",
  schema: z.object({
    postId: z.uuid(),
    authorId: z.uuid(),
    content: z.string(),
    mediaUrls: z.array(z.string()),
    tags: z.array(z.string()),
    inReplyToId: z.uuid().nullable(),
    createdAt: z.iso.datetime({ offset: true }),
  }),
});

/** PostDeleted is published when a post is deleted by its author or an admin; subject is the post id. */
export const PostDeleted = defineEvent({
  source: "posts",
  type: "post.deleted",
  visibility: "public",
  description: "A post was deleted.",
  schema: z.object({ postId: z.uuid(), authorId: z.uuid(), inReplyToId: z.uuid().nullable(), deletedBy: z.uuid() }),
});

/** PostLiked is published when a user likes a post they had not liked; subject is the post id. */
export const PostLiked = defineEvent({
  source: "posts",
  type: "post.liked",
  visibility: "public",
  description: "A user liked a post.",
  schema: z.object({ postId: z.uuid(), authorId: z.uuid(), userId: z.uuid() }),
});

/** PostUnliked is published when a user takes back a like; subject is the post id. */
export const PostUnliked = defineEvent({
  source: "posts",
  type: "post.unliked",
  visibility: "public",
  description: "A user took back their like of a post.",
  schema: z.object({ postId: z.uuid(), authorId: z.uuid(), userId: z.uuid() }),
});

/** postEvents lists every event the posts module publishes. */
export const postEvents = [PostCreated, PostDeleted, PostLiked, PostUnliked];
