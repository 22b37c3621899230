import { defineSubscription } from "../../src/platform.ts";
import { PostCreated, PostDeleted } from "../posts/events.ts";

/**
 * countPosts keeps each profile's `posts_count` from the posts module's events. Every post gets
 * a row in `users.counted_posts` (a tombstone once deleted) and the counter moves only when that
 * row changes state, so an event delivered twice, or a deletion seen before its creation, leaves
 * the count equal to the author's live posts.
 */
export const countPosts = defineSubscription({
  name: "users.count-posts",
  on: [PostCreated, PostDeleted],
  // It only writes counters: declared so, its deliveries never hold back others' reads.
  appends: false,
  handler: async (event, { sql }) => {
    const { postId, authorId } = event.data;
    if (event.type === "post.created") {
      await sql`
        with ins as (insert into users.counted_posts (post_id, author_id) values (${postId}, ${authorId}) on conflict do nothing returning author_id)
        update users.accounts set posts_count = posts_count + 1 where id = (select author_id from ins)`;
    } else {
      // Inserted as a tombstone (creation not seen yet): nothing to take back. Flipped from live: one fewer.
      await sql`
        with gone as (
          insert into users.counted_posts (post_id, author_id, deleted) values (${postId}, ${authorId}, true)
          on conflict (post_id) do update set deleted = true where users.counted_posts.deleted = false
          returning author_id, (xmax <> 0) as was_live
        )
        update users.accounts set posts_count = posts_count - 1 where id = (select author_id from gone where was_live)`;
    }
  },
});
