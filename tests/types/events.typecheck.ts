// Type-level tests for typed events: `bun run typecheck` (tsc --noEmit) compiles this file, and
// never runs it. The first part must compile; in the second, every `@ts-expect-error` marks a
// line that must not compile (tsc fails on a directive with no error under it), and its comment
// names the error code that `tests/types/expect-errors.unit.test.ts` checks is the one reported,
// so that a directive cannot be satisfied by an unrelated mistake.
import { z } from "zod";
import { defineSubscription } from "../../outbox/subscription.ts";
import type { Appender, SubscriptionDefinition } from "../../outbox/types.ts";
import type { Tx } from "../../src/db/client.ts";
import { defineEvent, type EnvelopeOf, type EventData } from "../../src/events/definition.ts";

const PostCreated = defineEvent({
  source: "posts",
  type: "post.created",
  visibility: "public",
  description: "A post was published.",
  schema: z.object({ postId: z.string(), authorId: z.string(), body: z.string(), tags: z.array(z.string()).default([]) }),
});
const UserFollowed = defineEvent({
  source: "users",
  type: "user.followed",
  visibility: "public",
  description: "A user followed another.",
  schema: z.object({ followerId: z.string(), followeeId: z.string() }),
});
const PostDrafted = defineEvent({
  source: "posts",
  type: "post.drafted",
  visibility: "internal",
  description: "A draft was saved (the post aggregate's own stream).",
  schema: z.object({ postId: z.string(), body: z.string() }),
});

declare const outbox: Appender;
declare const tx: Tx;
const subject = "post-1";
const data = { postId: "post-1", authorId: "user-1", body: "hello" };

// ---------------------------------------------------------------------------------------------
// Compiles: the ways a module author uses typed events.
// ---------------------------------------------------------------------------------------------

export async function positive(): Promise<void> {
  // The definition keeps its literal type name and visibility.
  const type: "post.created" = PostCreated.type;
  const visibility: "internal" = PostDrafted.visibility;

  // Appending through definitions; `tags` has a default, so it may be left out of the input.
  const envelopes = await outbox.append(tx, [
    PostCreated.with(data, { subject }),
    UserFollowed.with({ followerId: "a", followeeId: "b" }, { subject: "a", id: crypto.randomUUID() }),
  ]);
  // What comes back is typed too: the output type, where the default is filled in.
  const first = envelopes[0]!;
  if (first.type === "post.created") {
    const tags: string[] = first.data.tags;
    void tags;
  }
  await outbox.appendToStream(tx, "post-1", 0, [PostDrafted.with({ postId: "post-1", body: "draft" }, { subject })]);

  // A handler gets a discriminated union of the definitions in `on`.
  const fanOut = defineSubscription({
    name: "timelines.fan-out",
    on: [PostCreated, UserFollowed],
    handler: async (event, ctx) => {
      switch (event.type) {
        case "post.created": {
          const body: string = event.data.body;
          const tags: string[] = event.data.tags;
          void [body, tags];
          // Appending inside a handler: the handled event becomes the cause.
          await outbox.append(ctx.tx, [UserFollowed.with({ followerId: event.data.authorId, followeeId: "x" }, { subject: event.subject })]);
          break;
        }
        case "user.followed": {
          const follower: string = event.data.followerId;
          void follower;
          break;
        }
        default: {
          // Every type in `on` is handled: a definition added to `on` fails here until it is.
          const unhandled: never = event;
          void unhandled;
        }
      }
    },
  });

  // A projection gets the same union, a batch at a time; a content pattern narrows `on`.
  const projection = defineSubscription({
    name: "search.index-posts",
    on: [PostCreated],
    pattern: { type: ["post.created"], data: { tags: ["featured"] } },
    handleBatch: async (events, ctx) => {
      const ids: string[] = events.map((e) => e.data.postId);
      await outbox.append(
        ctx.tx,
        events.map((e) => UserFollowed.with({ followerId: e.data.authorId, followeeId: "y" }, { subject: e.subject, causedBy: e })),
      );
      void ids;
    },
  });

  // A relay without `on` takes every public event, so its events are untyped envelopes.
  const relay = defineSubscription({
    name: "webhooks.relay",
    batchHandler: async (events) => {
      const types: string[] = events.map((e) => e.type);
      void types;
    },
  });

  // Typed subscriptions are ordinary subscription definitions (a module's list holds them all).
  const all: SubscriptionDefinition[] = [fanOut, projection, relay];

  // A stream read with the definitions it may hold comes back as their union, with versions.
  for (const e of await outbox.readStream(tx, "post-1", [PostCreated, PostDrafted])) {
    const version: number = e.version;
    const body: string = e.type === "post.drafted" ? e.data.body : e.data.tags.join(",");
    void [version, body];
  }

  // `is` narrows an envelope read back untyped, e.g. from readStream.
  const [stored] = await outbox.readStream(tx, "post-1");
  if (stored && PostDrafted.is(stored)) {
    const body: string = stored.data.body;
    void body;
  }

  // EnvelopeOf and EventData name the types for helper functions.
  const title = (e: EnvelopeOf<typeof PostCreated>): string => e.data.body.slice(0, 20);
  const follow: EventData<typeof UserFollowed> = { followerId: "a", followeeId: "b" };
  void [type, visibility, all, title, follow];
}

// ---------------------------------------------------------------------------------------------
// Does not compile.
// ---------------------------------------------------------------------------------------------

export async function negative(): Promise<void> {
  // Wrong data.
  // @ts-expect-error TS2322 body must be a string
  PostCreated.with({ ...data, body: 42 }, { subject });

  // Missing data: a required field, or the data altogether.
  // @ts-expect-error TS2345 authorId is required
  PostCreated.with({ postId: "p", body: "b" }, { subject });
  // @ts-expect-error TS2554 no data at all
  PostCreated.with();

  // A field the schema does not declare (a typo of authorId).
  // @ts-expect-error TS2561 excess property (tsc suggests authorId)
  PostCreated.with({ ...data, autorId: "x" }, { subject });

  // Missing subject.
  // @ts-expect-error TS2345 subject is required
  PostCreated.with(data, {});

  // Untyped appends are gone: an event is made by its definition.
  // @ts-expect-error TS2739 no definition
  await outbox.append(tx, [{ type: "post.created", subject, data }]);
  // Nor can an event be built by hand around a definition, bypassing the check of its data.
  // @ts-expect-error TS2741 not made by `with`
  await outbox.append(tx, [{ definition: PostCreated, type: "post.created", subject, data: { ...data, body: 1 } }]);

  // A definition must choose its visibility, from the two there are, and follow the naming rule.
  // @ts-expect-error TS2345 visibility missing
  defineEvent({ source: "posts", type: "post.edited", description: "d", schema: z.object({}) });
  // @ts-expect-error TS2322 visibility must be public or internal
  defineEvent({ source: "posts", type: "post.edited", visibility: "private", description: "d", schema: z.object({}) });
  // @ts-expect-error TS2322 type name must be <aggregate>.<verb>
  defineEvent({ source: "posts", type: "postedited", visibility: "public", description: "d", schema: z.object({}) });

  defineSubscription({
    name: "timelines.fan-out",
    on: [PostCreated, UserFollowed],
    handler: async (event) => {
      // A field that does not exist on any event in `on`.
      // @ts-expect-error TS2339 no such field
      void event.data.title;
      // A type no definition in `on` declares: the comparison cannot be true, so it does not narrow.
      // @ts-expect-error TS2367 no overlap
      if (event.type === "post.drafted") return;
      // A type string no definition declares at all.
      // @ts-expect-error TS2367 no overlap
      if (event.type === "post.creatd") return;
      if (event.type === "post.created") {
        // Narrowed to post.created: followerId belongs to user.followed.
        // @ts-expect-error TS2339 not on post.created
        void event.data.followerId;
      }
      // Before narrowing only the fields every event in `on` has are there.
      // @ts-expect-error TS2339 postId is not on user.followed
      void event.data.postId;
    },
  });

  for (const e of await outbox.readStream(tx, "post-1", [PostDrafted])) {
    // @ts-expect-error TS2339 a draft has no tags
    void e.data.tags;
  }

  defineSubscription({
    name: "search.index-posts",
    on: [PostCreated],
    handleBatch: async (events) => {
      // @ts-expect-error TS2339 no such field on post.created
      void events[0]?.data.followerId;
    },
  });

  defineSubscription({
    name: "timelines.by-name",
    // @ts-expect-error TS2322 `on` takes definitions, not type names
    on: ["post.created"],
    handler: async () => {},
  });

  // @ts-expect-error TS2345 a handler must name the events it consumes
  defineSubscription({ name: "timelines.untyped", handler: async () => {} });

  // @ts-expect-error TS2345 one body only
  defineSubscription({ name: "timelines.both", on: [PostCreated], handler: async () => {}, handleBatch: async () => {} });
}
