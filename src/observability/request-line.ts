import pino, { type Logger } from "pino";

/** RequestLine is what the one log line per request says. */
export interface RequestLine {
  /** An id that needs no escaping in JSON (`requestIds` checks ids against `[A-Za-z0-9._:-]`, or makes a UUID). */
  requestId: string;
  /** As `requestId`. */
  correlationId: string;
  method: string;
  path: string;
  status: number;
  ms: number;
}

const S = pino.symbols as unknown as Record<string, symbol>;
type Internals = Record<symbol, unknown> & Logger;

/**
 * requestLineWriter returns how the edge writes its request line through `log`: the same JSON line
 * `log.info(fields, "request")` writes (level, time, the logger's bindings, the fields, the
 * message, in pino's order), assembled directly from pino's own level prefix, time function and
 * bindings and handed to the logger's destination. The line's keys are fixed and its values are
 * ids (checked against a safe pattern at the edge), a method, a path and two numbers, so pino's
 * general path (per-key serializers, redaction, stringifiers: half a microsecond per field) has
 * nothing to do. A logger with a mixin, a log formatter, a message prefix, a write hook or a
 * destination that wants metadata (multistream, transports) is written through `log.info` as before.
 * The level is checked on every call, so changing `log.level` still applies.
 * tests/platform/edge.int.test.ts compares the lines with pino's.
 */
export function requestLineWriter(log: Logger): (line: RequestLine) => void {
  const l = log as Internals;
  const stream = l[S.streamSym!] as { write(s: string): void; [k: symbol]: unknown } | undefined;
  const formatters = l[S.formattersSym!] as { log?: unknown } | undefined;
  const hooks = l[S.hooksSym!] as { streamWrite?: unknown } | undefined;
  const plain =
    stream !== undefined &&
    typeof stream.write === "function" &&
    stream[S.needsMetadataGsym!] !== true &&
    !l[S.mixinSym!] &&
    !formatters?.log &&
    !hooks?.streamWrite &&
    !l[S.msgPrefixSym!] &&
    l[S.messageKeySym!] === "msg";
  if (!plain) return (line) => log.info(line, "request");
  const prefix = (l[S.lsCacheSym!] as Record<number, string>)[log.levels.values.info!]!;
  const time = perMillisecond(l[S.timeSym!] as () => string);
  const end = l[S.endSym!] as string;
  const method = lastJson();
  const path = lastJson();
  return (line) => {
    if (!log.isLevelEnabled("info")) return;
    // Bindings are read per line: a child made later (or `setBindings`) is reflected as in pino.
    stream.write(
      `${prefix}${time()}${l[S.chindingsSym!] as string},"requestId":"${line.requestId}","correlationId":"${line.correlationId}","method":${method(line.method)},"path":${path(line.path)},"status":${line.status},"ms":${line.ms},"msg":"request"${end}`,
    );
  };
}

/** lastJson is `JSON.stringify` of a string, remembering its last answer: under load one route's lines repeat the same method and path. */
function lastJson(): (s: string) => string {
  let last: string | undefined;
  let json = "";
  return (s) => {
    if (s !== last) {
      last = s;
      json = JSON.stringify(s);
    }
    return json;
  };
}

/**
 * perMillisecond is pino's ISO time function made once per millisecond (the text it gives changes
 * no more often; many request lines share one under load), or `time` itself when it is another.
 */
function perMillisecond(time: () => string): () => string {
  if (time !== pino.stdTimeFunctions.isoTime) return time;
  let at = Number.NaN;
  let text = "";
  return () => {
    const now = Date.now();
    if (now !== at) {
      at = now;
      text = `,"time":"${new Date(now).toISOString()}"`;
    }
    return text;
  };
}
