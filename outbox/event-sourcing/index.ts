/**
 * The event-sourcing runtime: a decider (src/events/decider.ts) bound to the event log with
 * `eventSourced`, commands through `handleCommand`, snapshots every N events, and temporal reads.
 */
export { DEFAULT_MAX_ATTEMPTS, DEFAULT_SNAPSHOT_EVERY, type EventSourced, type EventSourcedOptions, eventSourced } from "./aggregate.ts";
export { type CommandResult, type HandleCommandOptions, handleCommand } from "./handle-command.ts";
export { type Loaded, loadStreams, StreamGapError } from "./read.ts";
export { type HistoryEntry, loadState, type ReadOptions, type StateRead, stateAtTime, stateAtVersion, streamHistory } from "./temporal.ts";
