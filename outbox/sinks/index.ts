export { type CallLimits, type EntryDisposition, type EntryResult, firstPerKey, type PendingEntry, type SinkLog, takeCall, utf8Length } from "./batching.ts";
export { DEFAULT_SLICE_MS, type DeliveryOptions, DeliveryState, sendInCalls, stateOf } from "./delivery.ts";
export {
  classifyPutEventsError,
  createEventBridgeClient,
  createEventBridgeSink,
  DETAIL_TYPE_MAX_CHARS,
  EVENTBRIDGE_SINK,
  type EventBridgeSinkOptions,
  PUT_EVENTS_MAX_BYTES,
  PUT_EVENTS_MAX_ENTRIES,
  putEventsEntrySize,
  toPutEventsEntry,
} from "./eventbridge.ts";
export {
  createKinesisClient,
  createKinesisSink,
  KINESIS_MAX_RECORD_BYTES,
  KINESIS_SINK,
  type KinesisSinkOptions,
  PARTITION_KEY_MAX,
  PUT_RECORDS_MAX_BYTES,
  PUT_RECORDS_MAX_RECORDS,
  partitionKeyFor,
  putRecords,
} from "./kinesis.ts";
export { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, errorName, errorText, type FailureKind, failureKind, fullJitterDelay, sleep } from "./retry.ts";
