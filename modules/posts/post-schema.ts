import { z } from "@hono/zod-openapi";

/** PostAuthorSchema is a post's author as every post answer shows it. */
export const PostAuthorSchema = z.object({ id: z.uuid(), username: z.string(), displayName: z.string() }).openapi("PostAuthor");

/** PostSchema is a post as every API answer shows it (posts, replies, timelines, search hits). */
export const PostSchema = z
  .object({
    id: z.uuid(),
    authorId: z.uuid(),
    author: PostAuthorSchema.nullable(),
    content: z.string(),
    mediaUrls: z.array(z.string()),
    tags: z.array(z.string()),
    inReplyToId: z.uuid().nullable(),
    likesCount: z.number().int(),
    repliesCount: z.number().int(),
    likedByMe: z.boolean(),
    createdAt: z.iso.datetime(),
  })
  .openapi("Post");
