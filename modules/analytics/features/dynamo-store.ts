/**
 * The DynamoDB feature store, used when FEATURE_STORE_TABLE is set: one item per (userId,
 * featureType), the partition and sort keys, written with BatchWriteItem through
 * `@aws-sdk/lib-dynamodb`. Every item carries `ttl` (epoch seconds, 30 days after its write) for
 * the table's Time to Live; DynamoDB deletes expired items lazily (typically within days), so
 * reads filter them out themselves.
 *
 * The table is created by infrastructure (Terraform, CloudFormation, CDK), with TTL enabled on
 * `ttl`: the application never creates tables in production. `createFeatureTable` is for local
 * development and tests (dynalite has no TTL API, so enabling TTL is optional there).
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { errorName, failureKind } from "../../../src/platform.ts";
import { FeatureStoreUnavailableError } from "../errors.ts";
import { type FeatureItem, type FeatureStore, lastPerKey } from "./types.ts";

/** BATCH_WRITE_MAX_ITEMS is the BatchWriteItem limit on items per call. */
export const BATCH_WRITE_MAX_ITEMS = 25;

/** DynamoFeatureStoreOptions configures createDynamoFeatureStore. */
export interface DynamoFeatureStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  clock?: () => Date;
  /** Resends of unprocessed items before giving up (the caller then retries the whole put); default 8. */
  maxResends?: number;
  /** First backoff ceiling in ms, doubled per resend, full jitter; default 50. */
  baseDelayMs?: number;
}

/**
 * createDynamoFeatureStore keeps feature items in a DynamoDB table keyed by userId (partition)
 * and featureType (sort). `put` writes in calls of 25 and resends only what DynamoDB left
 * unprocessed (throttling), with backoff; it throws when items stay unprocessed, and writing
 * everything again is harmless since items are absolute.
 *
 * @example const store = createDynamoFeatureStore({ client: createDynamoClient("eu-west-1"), tableName: "user-features" });
 */
export function createDynamoFeatureStore(opts: DynamoFeatureStoreOptions): FeatureStore {
  const doc = DynamoDBDocumentClient.from(opts.client, { marshallOptions: { removeUndefinedValues: true } });
  const clock = opts.clock ?? (() => new Date());
  const maxResends = opts.maxResends ?? 8;
  const baseMs = opts.baseDelayMs ?? 50;
  return {
    kind: "dynamodb",
    async put(given) {
      // BatchWriteItem refuses a call naming one key twice: a key given twice keeps its later item.
      const items = lastPerKey(given);
      for (let i = 0; i < items.length; i += BATCH_WRITE_MAX_ITEMS) {
        let requests = items.slice(i, i + BATCH_WRITE_MAX_ITEMS).map((item) => ({ PutRequest: { Item: { ...item } } }));
        for (let resend = 0; requests.length > 0; resend++) {
          if (resend > maxResends) throw new Error(`DynamoDB left ${requests.length} feature items unprocessed after ${maxResends} resends`);
          if (resend > 0) await Bun.sleep(Math.random() * Math.min(baseMs * 2 ** resend, 2_000));
          const out = await doc.send(new BatchWriteCommand({ RequestItems: { [opts.tableName]: requests } }));
          requests = (out.UnprocessedItems?.[opts.tableName] ?? []) as typeof requests;
        }
      }
    },
    async get(userId) {
      try {
        return await query(userId);
      } catch (err) {
        // Throttling, timeouts, 5xx and refused connections are DynamoDB's to end: the reader is
        // told to retry (503). Anything else (credentials, a missing table) is ours: a 500, logged.
        const kind = failureKind(err);
        if (kind === "throttled" || kind === "transient" || kind === "server") throw new FeatureStoreUnavailableError(`DynamoDB: ${errorName(err)}`);
        throw err;
      }
    },
  };

  async function query(userId: string): Promise<FeatureItem[]> {
    const items: FeatureItem[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await doc.send(
        new QueryCommand({
          TableName: opts.tableName,
          KeyConditionExpression: "userId = :u",
          // TTL is a reserved word in DynamoDB expressions: the attribute goes through a name placeholder.
          FilterExpression: "#ttl > :now",
          ExpressionAttributeNames: { "#ttl": "ttl" },
          ExpressionAttributeValues: { ":u": userId, ":now": Math.floor(clock().getTime() / 1000) },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((out.Items ?? []) as FeatureItem[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items.sort((a, b) => (a.featureType < b.featureType ? -1 : 1));
  }
}

/** createDynamoClient builds a DynamoDB client; `endpoint` and `credentials` are for emulators, production uses the default chain. */
export function createDynamoClient(region: string, endpoint?: string, credentials?: DynamoDBClientConfig["credentials"]): DynamoDBClient {
  return new DynamoDBClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    // HTTP/1.1 with bounded timeouts, as for Kinesis: a hung call fails into a retry instead of stalling the worker.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 10_000 }),
  });
}

/**
 * createFeatureTable creates the feature table (on-demand capacity) and waits until it is active,
 * for development and tests; with `enableTtl` it also turns on Time to Live on `ttl` (DynamoDB;
 * emulators without the TTL API leave it off). An existing table is left as it is.
 */
export async function createFeatureTable(client: DynamoDBClient, tableName: string, opts: { enableTtl?: boolean } = {}): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: "userId", KeyType: "HASH" },
          { AttributeName: "featureType", KeyType: "RANGE" },
        ],
        AttributeDefinitions: [
          { AttributeName: "userId", AttributeType: "S" },
          { AttributeName: "featureType", AttributeType: "S" },
        ],
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  for (let i = 0; ; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") break;
    if (i >= 300) throw new Error(`table ${tableName} did not become ACTIVE`);
    await Bun.sleep(100);
  }
  if (opts.enableTtl)
    await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: "ttl", Enabled: true } }));
}
