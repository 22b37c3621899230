import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
} from "@aws-sdk/client-kinesis";
// kinesalite ships no types; it is a CommonJS factory returning a node:http server.
// @ts-expect-error no declaration file
import kinesalite from "kinesalite";
import { startFaultProxy } from "./fault-proxy.ts";

/** FAKE_CREDENTIALS are static keys for the emulators, which check that requests are signed but not by whom. */
export const FAKE_CREDENTIALS = { accessKeyId: "AKIDEMULATOR", secretAccessKey: "emulator-secret" };

const AMZ_JSON = "application/x-amz-json-1.1";

const awsError = (type: string, message: string, status = 400): Response =>
  new Response(JSON.stringify({ __type: type, message }), { status, headers: { "content-type": AMZ_JSON, "x-amzn-errortype": type } });

const awsJson = (body: unknown): Response => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": AMZ_JSON } });

/** EntryFault makes the emulators fail chosen entries (by index in the call, or by predicate) for the next `calls` calls. */
export interface EntryFault<T> {
  /** Per-entry ErrorCode, e.g. `InternalFailure` or `ProvisionedThroughputExceededException`. */
  code: string;
  message?: string;
  /** Zero-based positions in the call's entry list. */
  indices?: number[];
  where?: (entry: T, index: number) => boolean;
  /** How many calls the fault applies to (default 1; Infinity for a persistent failure). */
  calls?: number;
  /** Refuse the whole call (HTTP 400 with `code` as the error type) when any entry matches, as AWS does for an invalid request. */
  wholeCall?: boolean;
}

interface ActiveFault<T> extends EntryFault<T> {
  remaining: number;
}

function faultCodeFor<T>(faults: ActiveFault<T>[], entry: T, index: number): ActiveFault<T> | undefined {
  return faults.find((f) => f.indices?.includes(index) || f.where?.(entry, index));
}

function consumeFaults<T>(faults: ActiveFault<T>[]): ActiveFault<T>[] {
  for (const f of faults) f.remaining--;
  return faults.filter((f) => f.remaining > 0);
}

/**
 * Outage makes an emulator fail every call while it is on: `throttle` answers HTTP 400
 * ThrottlingException (EventBridge) or ProvisionedThroughputExceededException (Kinesis),
 * `server-error` answers HTTP 500 InternalFailure and 503 ServiceUnavailable in turn, `reset` cuts
 * every connection, `refuse` closes the port. Null ends it.
 */
export type Outage = "throttle" | "server-error" | "reset" | "refuse" | null;

// The HTTP answer to a call during an outage, or undefined when the call may go on.
function outageResponse(outage: Outage, throttleCode: string, call: { outcome: string }, n: number): Response | undefined {
  if (outage === "throttle") {
    call.outcome = "throttled";
    return awsError(throttleCode, "Rate exceeded");
  }
  if (outage === "server-error") {
    call.outcome = "unavailable";
    return n % 2 === 0 ? awsError("InternalFailure", "Internal Service Failure", 500) : awsError("ServiceUnavailableException", "Service is unavailable", 503);
  }
  return undefined;
}

// A whole-call fault from `faults` that matches any entry, consumed as it fires.
function wholeCallFault<T>(faults: ActiveFault<T>[], entries: T[]): ActiveFault<T> | undefined {
  const f = faults.find((x) => x.wholeCall && entries.some((e, i) => x.indices?.includes(i) || x.where?.(e, i)));
  if (f) f.remaining--;
  return f;
}

/** PutEventsEntry is one entry as the emulator received it on the wire. */
export interface PutEventsEntry {
  Source: string;
  DetailType: string;
  Detail: string;
  EventBusName?: string;
  /** Epoch seconds, as the AWS JSON protocol serialises timestamps. */
  Time?: number;
  Resources?: string[];
}

/** EmulatorCall records one batch call: what arrived, its counted size and how the emulator answered. */
export interface EmulatorCall<T> {
  entries: T[];
  bytes: number;
  outcome: "ok" | "throttled" | "unavailable" | "invalid";
  /** Positions the emulator failed on purpose. */
  failed: number[];
}

/** EventBridgeEmulator is a PutEvents-only EventBridge endpoint that records calls and injects failures. */
export interface EventBridgeEmulator {
  /** A fault proxy in front of the emulator; point clients here. */
  endpoint: string;
  /** Every PutEvents call, in arrival order, including throttled and invalid ones. */
  calls: EmulatorCall<PutEventsEntry>[];
  /** Entries accepted (given an EventId), in arrival order. */
  received: PutEventsEntry[];
  failEntries(fault: EntryFault<PutEventsEntry>): void;
  /** Answers the next `n` calls with HTTP 400 ThrottlingException. */
  throttleCalls(n: number): void;
  /** Fails every call (or connection) until called again with null. */
  outage(kind: Outage): void;
  /** Connections cut on purpose by a `reset` outage. */
  readonly connectionsReset: number;
  reset(): void;
  stop(): Promise<void>;
}

/** PUT_EVENTS_LIMITS are the AWS PutEvents limits the emulator enforces. */
export const PUT_EVENTS_LIMITS = { maxEntries: 10, maxBytes: 262_144, maxDetailTypeChars: 128 };

/** putEventsEntryBytes sizes an entry with the formula from the EventBridge user guide (no EventBusName). */
export function putEventsEntryBytes(e: PutEventsEntry): number {
  const b = (s: string | undefined) => Buffer.byteLength(s ?? "", "utf8");
  return (e.Time !== undefined ? 14 : 0) + b(e.Source) + b(e.DetailType) + b(e.Detail) + (e.Resources ?? []).reduce((n, r) => n + b(r), 0);
}

/** startEventBridge serves the AWS JSON 1.1 PutEvents operation on an ephemeral 127.0.0.1 port. */
export function startEventBridge(): EventBridgeEmulator {
  let faults: ActiveFault<PutEventsEntry>[] = [];
  let throttle = 0;
  let outage: Outage = null;
  let nextId = 0;
  const calls: EmulatorCall<PutEventsEntry>[] = [];
  const received: PutEventsEntry[] = [];

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const target = req.headers.get("x-amz-target");
      if (req.method !== "POST" || target !== "AWSEvents.PutEvents") return awsError("UnknownOperationException", `unsupported operation ${target}`);
      if (!(req.headers.get("content-type") ?? "").startsWith(AMZ_JSON)) return awsError("SerializationException", `content-type must be ${AMZ_JSON}`);
      if (!req.headers.get("authorization")) return awsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403);
      const body = (await req.json()) as { Entries?: PutEventsEntry[] };
      const entries = body.Entries ?? [];
      const bytes = entries.reduce((n, e) => n + putEventsEntryBytes(e), 0);
      const call: EmulatorCall<PutEventsEntry> = { entries, bytes, outcome: "ok", failed: [] };
      calls.push(call);

      const down = outageResponse(outage, "ThrottlingException", call, calls.length);
      if (down) return down;
      if (throttle > 0) {
        throttle--;
        call.outcome = "throttled";
        return awsError("ThrottlingException", "Rate exceeded");
      }
      const refused = wholeCallFault(faults, entries);
      faults = faults.filter((f) => f.remaining > 0);
      const invalid = refused
        ? (refused.message ?? `injected ${refused.code}`)
        : entries.length < 1 || entries.length > PUT_EVENTS_LIMITS.maxEntries
          ? `Entries has ${entries.length} members; PutEvents takes 1 to ${PUT_EVENTS_LIMITS.maxEntries}`
          : bytes > PUT_EVENTS_LIMITS.maxBytes
            ? `Total size of the entries in the request is ${bytes} bytes; the limit is ${PUT_EVENTS_LIMITS.maxBytes}`
            : entries.some((e) => [...(e.DetailType ?? "")].length > PUT_EVENTS_LIMITS.maxDetailTypeChars)
              ? `DetailType is longer than ${PUT_EVENTS_LIMITS.maxDetailTypeChars} characters`
              : undefined;
      if (invalid) {
        call.outcome = "invalid";
        return awsError(refused?.code ?? "ValidationException", invalid);
      }

      const results = entries.map((entry, i) => {
        const fault = faultCodeFor(
          faults.filter((f) => !f.wholeCall),
          entry,
          i,
        );
        if (fault) {
          call.failed.push(i);
          return { ErrorCode: fault.code, ErrorMessage: fault.message ?? `injected ${fault.code}` };
        }
        received.push(entry);
        return { EventId: `emulated-${++nextId}` };
      });
      faults = consumeFaults(faults);
      return awsJson({ FailedEntryCount: call.failed.length, Entries: results });
    },
  });
  const proxy = startFaultProxy(server.port!);
  const setOutage = (kind: Outage) => {
    outage = kind;
    proxy.set(kind === "reset" || kind === "refuse" ? kind : "pass");
  };

  return {
    endpoint: `http://127.0.0.1:${proxy.port}`,
    calls,
    received,
    failEntries(fault) {
      faults.push({ ...fault, remaining: fault.calls ?? 1 });
    },
    throttleCalls(n) {
      throttle = n;
    },
    outage: setOutage,
    get connectionsReset() {
      return proxy.reset;
    },
    reset() {
      faults = [];
      throttle = 0;
      setOutage(null);
      calls.length = 0;
      received.length = 0;
    },
    async stop() {
      proxy.stop();
      await server.stop(true);
    },
  };
}

/** KinesisRecord is one PutRecords record as the emulator front received it, with Data decoded. */
export interface KinesisRecord {
  partitionKey: string;
  data: string;
  /** Data plus partition key bytes, the unit of the Kinesis record and request limits. */
  bytes: number;
}

/** KinesisEmulator is kinesalite behind a recording, limit-enforcing, fault-injecting front. */
export interface KinesisEmulator {
  /** A fault proxy in front of the front; point clients here. */
  endpoint: string;
  /** Every PutRecords call, in arrival order, including throttled and invalid ones. */
  calls: EmulatorCall<KinesisRecord>[];
  /** Failed records are never written to kinesalite, as in AWS, and answered with the fault's ErrorCode. */
  failRecords(fault: EntryFault<KinesisRecord>): void;
  /** Answers the next `n` PutRecords calls with HTTP 400 ProvisionedThroughputExceededException. */
  throttleCalls(n: number): void;
  /** Fails every call (or connection), whatever the operation, until called again with null. */
  outage(kind: Outage): void;
  /** Connections cut on purpose by a `reset` outage. */
  readonly connectionsReset: number;
  reset(): void;
  stop(): Promise<void>;
}

/** PUT_RECORDS_LIMITS are the AWS PutRecords limits the front enforces (kinesalite checks only some). */
export const PUT_RECORDS_LIMITS = { maxRecords: 500, maxBytes: 5 * 1024 * 1024, maxRecordBytes: 1024 * 1024, maxPartitionKeyChars: 256 };

interface WireRecord {
  PartitionKey: string;
  Data: string;
  ExplicitHashKey?: string;
}

/**
 * startKinesis runs kinesalite in-process (in-memory store) and a front on 127.0.0.1 that forwards
 * every Kinesis call to it, recording and checking PutRecords on the way; both use ephemeral ports.
 */
export async function startKinesis(): Promise<KinesisEmulator> {
  const backend: HttpServer = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 50 });
  await new Promise<void>((resolve, reject) => {
    backend.once("error", reject);
    backend.listen(0, "127.0.0.1", () => resolve());
  });
  const backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/`;

  let faults: ActiveFault<KinesisRecord>[] = [];
  let throttle = 0;
  let outage: Outage = null;
  let outageCalls = 0;
  const calls: EmulatorCall<KinesisRecord>[] = [];

  const forward = async (req: Request, body: string): Promise<Response> => {
    const headers = new Headers(req.headers);
    headers.delete("host");
    headers.delete("content-length");
    const res = await fetch(backendUrl, { method: "POST", headers, body });
    return new Response(await res.text(), { status: res.status, headers: { "content-type": res.headers.get("content-type") ?? AMZ_JSON } });
  };

  const putRecords = async (req: Request, raw: string): Promise<Response> => {
    const body = JSON.parse(raw) as { StreamName: string; Records?: WireRecord[] };
    const wire = body.Records ?? [];
    const records = wire.map((r) => {
      const data = Buffer.from(r.Data, "base64");
      return { partitionKey: r.PartitionKey, data: data.toString("utf8"), bytes: data.byteLength + Buffer.byteLength(r.PartitionKey, "utf8") };
    });
    const bytes = records.reduce((n, r) => n + r.bytes, 0);
    const call: EmulatorCall<KinesisRecord> = { entries: records, bytes, outcome: "ok", failed: [] };
    calls.push(call);

    const down = outageResponse(outage, "ProvisionedThroughputExceededException", call, ++outageCalls);
    if (down) return down;
    if (throttle > 0) {
      throttle--;
      call.outcome = "throttled";
      return awsError("ProvisionedThroughputExceededException", `Rate exceeded for stream ${body.StreamName}`);
    }
    const big = records.find((r) => r.bytes > PUT_RECORDS_LIMITS.maxRecordBytes);
    const refused = wholeCallFault(faults, records);
    faults = faults.filter((f) => f.remaining > 0);
    const invalid = refused
      ? (refused.message ?? `injected ${refused.code}`)
      : records.length < 1 || records.length > PUT_RECORDS_LIMITS.maxRecords
        ? `Records has ${records.length} members; PutRecords takes 1 to ${PUT_RECORDS_LIMITS.maxRecords}`
        : big
          ? `a record is ${big.bytes} bytes (data + partition key); the limit is ${PUT_RECORDS_LIMITS.maxRecordBytes}`
          : bytes > PUT_RECORDS_LIMITS.maxBytes
            ? `the request is ${bytes} bytes (data + partition keys); the limit is ${PUT_RECORDS_LIMITS.maxBytes}`
            : records.some((r) => r.partitionKey.length < 1 || r.partitionKey.length > PUT_RECORDS_LIMITS.maxPartitionKeyChars)
              ? `a partition key is not 1 to ${PUT_RECORDS_LIMITS.maxPartitionKeyChars} characters`
              : undefined;
    if (invalid) {
      call.outcome = "invalid";
      return awsError(refused?.code ?? "InvalidArgumentException", invalid);
    }

    const failures = new Map<number, ActiveFault<KinesisRecord>>();
    records.forEach((r, i) => {
      const fault = faultCodeFor(
        faults.filter((f) => !f.wholeCall),
        r,
        i,
      );
      if (fault) failures.set(i, fault);
    });
    faults = consumeFaults(faults);
    call.failed = [...failures.keys()];
    if (failures.size === 0) return forward(req, raw);

    // Only the surviving records reach kinesalite; its answers are merged back in request order.
    const survivors = wire.filter((_, i) => !failures.has(i));
    let stored: { SequenceNumber: string; ShardId: string }[] = [];
    if (survivors.length > 0) {
      const res = await forward(req, JSON.stringify({ ...body, Records: survivors }));
      if (res.status !== 200) return res;
      stored = ((await res.json()) as { Records: { SequenceNumber: string; ShardId: string }[] }).Records;
    }
    let next = 0;
    const results = wire.map((_, i) => {
      const fault = failures.get(i);
      return fault ? { ErrorCode: fault.code, ErrorMessage: fault.message ?? `injected ${fault.code}` } : stored[next++];
    });
    return awsJson({ FailedRecordCount: failures.size, Records: results });
  };

  const front = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // PutRecords bodies are base64 JSON of up to 5 MiB of data.
    maxRequestBodySize: 16 * 1024 * 1024,
    async fetch(req) {
      const raw = await req.text();
      if (req.headers.get("x-amz-target") === "Kinesis_20131202.PutRecords") return putRecords(req, raw);
      const down = outageResponse(outage, "ProvisionedThroughputExceededException", { outcome: "" }, ++outageCalls);
      return down ?? forward(req, raw);
    },
  });
  const proxy = startFaultProxy(front.port!);
  const setOutage = (kind: Outage) => {
    outage = kind;
    proxy.set(kind === "reset" || kind === "refuse" ? kind : "pass");
  };

  return {
    endpoint: `http://127.0.0.1:${proxy.port}`,
    calls,
    failRecords(fault) {
      faults.push({ ...fault, remaining: fault.calls ?? 1 });
    },
    throttleCalls(n) {
      throttle = n;
    },
    outage: setOutage,
    get connectionsReset() {
      return proxy.reset;
    },
    reset() {
      faults = [];
      throttle = 0;
      setOutage(null);
      calls.length = 0;
    },
    async stop() {
      proxy.stop();
      await front.stop(true);
      backend.closeAllConnections?.();
      await new Promise<void>((resolve, reject) => backend.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** createStream creates a Kinesis stream and waits until it is ACTIVE. */
export async function createStream(client: KinesisClient, streamName: string, shardCount: number): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shardCount }));
  for (let i = 0; i < 100; i++) {
    const { StreamDescriptionSummary: s } = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    if (s?.StreamStatus === "ACTIVE") return;
    await Bun.sleep(10);
  }
  throw new Error(`stream ${streamName} did not become ACTIVE`);
}

/** StoredRecord is a record read back from a stream. */
export interface StoredRecord {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  data: string;
}

/** readStream reads every record of every shard from TRIM_HORIZON, each shard in sequence order. */
export async function readStream(client: KinesisClient, streamName: string): Promise<StoredRecord[]> {
  const { Shards = [] } = await client.send(new ListShardsCommand({ StreamName: streamName }));
  const out: StoredRecord[] = [];
  const decoder = new TextDecoder();
  for (const shard of Shards) {
    let { ShardIterator: iterator } = await client.send(
      new GetShardIteratorCommand({ StreamName: streamName, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" }),
    );
    while (iterator) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const r of page.Records ?? []) {
        out.push({ shardId: shard.ShardId!, sequenceNumber: r.SequenceNumber!, partitionKey: r.PartitionKey!, data: decoder.decode(r.Data) });
      }
      // At the tip of an open shard kinesalite keeps handing out iterators; an empty page means done.
      if (!page.Records?.length) break;
      iterator = page.NextShardIterator;
    }
  }
  return out;
}
