export {
  createEventBridgeClient,
  createEventBridgeSink,
  classifyPutEventsError,
  putEventsEntrySize,
  toPutEventsEntry,
  EVENTBRIDGE_SINK,
  PUT_EVENTS_MAX_BYTES,
  PUT_EVENTS_MAX_ENTRIES,
  DETAIL_TYPE_MAX_CHARS,
  type EventBridgeSinkOptions,
} from "./eventbridge.ts";
export {
  createKinesisClient,
  createKinesisSink,
  firstPerKey,
  partitionKeyFor,
  KINESIS_SINK,
  KINESIS_MAX_RECORD_BYTES,
  PARTITION_KEY_MAX,
  PUT_RECORDS_MAX_BYTES,
  PUT_RECORDS_MAX_RECORDS,
  type KinesisSinkOptions,
} from "./kinesis.ts";
export { sendInCalls, takeCall, utf8Length, type CallLimits, type DeliveryOptions, type EntryDisposition, type EntryResult, type PendingEntry, type SinkLog } from "./batching.ts";
export { fullJitterDelay, isRetryableCallError, errorName, errorText, DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, DEFAULT_MAX_RETRIES } from "./retry.ts";
