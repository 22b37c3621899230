import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { type AppEnv, currentUser, defineRoute, problem, requestLog } from "../../../src/platform.ts";
import { FeatureStoreUnavailableError, FeaturesNotFoundError } from "../errors.ts";
import { FEATURE_TYPES, FEATURE_WINDOW_DAYS, type FeatureStore, type FeatureType, FeatureValueSchemas } from "./types.ts";

const UserFeaturesSchema = z
  .object({
    userId: z.string(),
    /** When the newest item was computed; null when the store holds none (no events in 30 days). */
    updatedAt: z.string().nullable(),
    features: z.object(
      Object.fromEntries(FEATURE_TYPES.map((t) => [t, FeatureValueSchemas[t].optional()])) as {
        [K in FeatureType]: z.ZodOptional<(typeof FeatureValueSchemas)[K]>;
      },
    ),
  })
  .openapi("UserFeatures");

/** featureRoutes adds `GET /analytics/users/{id}/features` (the user themself or an admin). */
export function featureRoutes(api: OpenAPIHono<AppEnv>, deps: { store: FeatureStore }): void {
  api.openapi(
    defineRoute(
      { access: "user" },
      {
        method: "get",
        path: "/analytics/users/{id}/features",
        tags: ["analytics"],
        summary: `A user's recommendation features over the last ${FEATURE_WINDOW_DAYS} days (the user or an admin)`,
        description:
          "Computed from the user's clickstream by event time (UTC days) and updated by the analytics consumer shortly after ingestion. " +
          "Feature types with no stored item (no events in the window) are left out.",
        request: { params: z.object({ id: z.string().min(1).max(128).openapi({ description: "The clickstream userId (an account id)." }) }) },
        responses: {
          200: { description: "OK", content: { "application/json": { schema: UserFeaturesSchema } } },
          400: problem("Invalid id"),
          401: problem("Not signed in"),
          404: problem("Not this user's features (only the user and admins may read them)"),
          503: problem("The feature store did not answer (throttled, timed out or unreachable); retry after `retry-after` seconds"),
        },
      },
    ),
    async (c) => {
      const user = currentUser(c);
      const { id } = c.req.valid("param");
      if (user.id !== id && user.role !== "admin") throw new FeaturesNotFoundError();
      const items = await deps.store.get(id).catch((err: unknown) => {
        if (err instanceof FeatureStoreUnavailableError) requestLog(c).warn({ reason: err.message }, "feature store unavailable");
        throw err;
      });
      const features: Partial<Record<FeatureType, unknown>> = {};
      let updatedAt: string | null = null;
      for (const item of items) {
        features[item.featureType] = item.value;
        if (updatedAt === null || item.updatedAt > updatedAt) updatedAt = item.updatedAt;
      }
      return c.json({ userId: id, updatedAt, features } as z.infer<typeof UserFeaturesSchema>, 200);
    },
  );
}
