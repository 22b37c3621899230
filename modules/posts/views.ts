/** PostAuthor is the author shown with a post. */
export interface PostAuthor {
  id: string;
  username: string;
  displayName: string;
}

/** Post is a post or reply as the API shows it. */
export interface Post {
  id: string;
  authorId: string;
  author: PostAuthor | null;
  content: string;
  mediaUrls: string[];
  tags: string[];
  inReplyToId: string | null;
  likesCount: number;
  repliesCount: number;
  likedByMe: boolean;
  createdAt: string;
}

/** PostRow is a post as the queries read it, before its author is attached. */
export interface PostRow {
  id: string;
  author_id: string;
  content: string;
  media_urls: string[];
  tags: string[];
  in_reply_to_id: string | null;
  likes_count: number;
  replies_count: number;
  liked_by_me: boolean;
  /** ISO 8601, UTC. */
  created_at: string;
}

export const toPost = (r: PostRow, author: PostAuthor | null): Post => ({
  id: r.id,
  authorId: r.author_id,
  author,
  content: r.content,
  mediaUrls: r.media_urls,
  tags: r.tags,
  inReplyToId: r.in_reply_to_id,
  likesCount: r.likes_count,
  repliesCount: r.replies_count,
  likedByMe: r.liked_by_me,
  createdAt: r.created_at,
});
