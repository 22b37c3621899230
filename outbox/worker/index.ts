export { subscriptionFilter } from "./checkpoint.ts";
export { PartitionWorker } from "./loop.ts";
export { bodyOf, type CompiledSubscription, type SubscriptionBody, type WorkerDeps } from "./subscription.ts";
