import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../src/http/env.ts";
import { deadLetterRoutes } from "./dead-letters.ts";
import { eventRoutes } from "./events.ts";
import type { RoutesDeps } from "./shared.ts";
import { subscriptionRoutes } from "./subscriptions.ts";
import { testPatternRoute } from "./test-pattern.ts";

/** outboxRoutes adds the event catalog, event queries, lineage and the admin API. */
export function outboxRoutes(api: OpenAPIHono<AppEnv>, deps: RoutesDeps): void {
  eventRoutes(api, deps);
  testPatternRoute(api);
  subscriptionRoutes(api, deps);
  deadLetterRoutes(api, deps);
}
