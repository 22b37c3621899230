import { DomainError } from "../../src/platform.ts";

export class PostNotFoundError extends DomainError {
  constructor() {
    super("POSTS.NOT_FOUND", "not_found", "post not found");
  }
}

export class ReplyTargetNotFoundError extends DomainError {
  constructor() {
    super("POSTS.REPLY_TARGET_NOT_FOUND", "unprocessable", "the post this replies to does not exist or was deleted", {
      errors: [{ path: "inReplyToId", message: "no such post" }],
    });
  }
}

export class NotPostAuthorError extends DomainError {
  constructor() {
    super("POSTS.NOT_AUTHOR", "forbidden", "only the post's author or an admin may delete it");
  }
}
