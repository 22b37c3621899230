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
  partitionKeyFor,
  KINESIS_SINK,
  KINESIS_MAX_RECORD_BYTES,
  PARTITION_KEY_MAX,
  PUT_RECORDS_MAX_BYTES,
  PUT_RECORDS_MAX_RECORDS,
  type KinesisSinkOptions,
} from "./kinesis.ts";
export { firstPerKey, takeCall, utf8Length, type CallLimits, type EntryDisposition, type EntryResult, type PendingEntry, type SinkLog } from "./batching.ts";
export { sendInCalls, stateOf, DeliveryState, DEFAULT_SLICE_MS, type DeliveryOptions } from "./delivery.ts";
export { fullJitterDelay, failureKind, errorName, errorText, sleep, DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, type FailureKind } from "./retry.ts";
