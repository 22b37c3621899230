import type { StringPredicate } from "./string-matchers.ts";

const DOT = 46;
const COLON = 58;
const ZERO = 48;
const NINE = 57;

/**
 * parseIpv4 reads a dotted-quad IPv4 address into an unsigned 32-bit number, or -1 if `text` is not one.
 * It walks char codes instead of splitting so matching event values never allocates.
 */
export function parseIpv4(text: string): number {
  const length = text.length;
  if (length < 7 || length > 15) return -1;
  let address = 0;
  let octets = 0;
  let i = 0;
  while (octets < 4) {
    let value = 0;
    let digits = 0;
    while (i < length) {
      const code = text.charCodeAt(i);
      if (code < ZERO || code > NINE) break;
      value = value * 10 + (code - ZERO);
      digits++;
      i++;
    }
    if (digits === 0 || digits > 3 || value > 255) return -1;
    address = address * 256 + value;
    octets++;
    if (octets < 4) {
      if (text.charCodeAt(i) !== DOT) return -1;
      i++;
    }
  }
  return i === length ? address : -1;
}

function hexValue(code: number): number {
  if (code >= ZERO && code <= NINE) return code - ZERO;
  const lower = code | 0x20; // folds A-F onto a-f
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * parseIpv6 reads an IPv6 address (with optional `::` zero compression) into eight 16-bit groups in `out`
 * and reports whether `text` was one. Embedded dotted IPv4 tails and zone ids are not accepted, matching
 * the address shapes AWS recognises. `out` is caller-owned so matching can reuse one scratch buffer.
 */
export function parseIpv6(text: string, out: Uint16Array): boolean {
  const length = text.length;
  if (length < 2 || length > 39) return false;
  let i = 0;
  let groups = 0;
  let gap = -1; // group index where "::" stands for the missing zero groups
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return false;
    gap = 0;
    i = 2;
  }
  while (i < length) {
    if (groups === 8) return false;
    let value = 0;
    let digits = 0;
    while (i < length && digits < 5) {
      const hex = hexValue(text.charCodeAt(i));
      if (hex < 0) break;
      value = value * 16 + hex;
      digits++;
      i++;
    }
    if (digits === 0 || digits > 4) return false;
    out[groups++] = value;
    if (i === length) break;
    if (text.charCodeAt(i) !== COLON) return false;
    i++;
    if (i === length) return false; // a single trailing ":" is malformed
    if (text.charCodeAt(i) === COLON) {
      if (gap >= 0) return false;
      gap = groups;
      i++;
    }
  }
  if (gap < 0) return groups === 8;
  if (groups > 7) return false; // "::" must stand for at least one zero group
  const tail = groups - gap;
  // Copy the tail to the end first (high indexes before low) so no source group is overwritten before it is read.
  for (let k = 0; k < tail; k++) out[7 - k] = out[groups - 1 - k] as number;
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}

// One scratch buffer for all IPv6 matches: matching is synchronous and parseIpv6 never re-enters itself.
const scratch = new Uint16Array(8);

/**
 * mappedIpv4 returns the IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, written in hex groups)
 * stands for, or -1. Java's InetAddress, which event-ruler parses addresses with, turns such an address into
 * an Inet4Address, so on AWS `::ffff:a00:1` is the IPv4 address 10.0.0.1 for cidr and exact matching.
 */
function mappedIpv4(groups: Uint16Array): number {
  for (let g = 0; g < 5; g++) if (groups[g] !== 0) return -1;
  if (groups[5] !== 0xffff) return -1;
  return (groups[6] as number) * 65536 + (groups[7] as number);
}

/** IpKind says what readIp found: an IPv4 address (mapped ones included), an IPv6 address, or nothing. */
type IpKind = "v4" | "v6" | null;

/** readIp parses `text` as event-ruler would; for "v4" the address is returned in `v4Out[0]`, for "v6" in `groups`. */
function readIp(text: string, groups: Uint16Array, v4Out: Float64Array): IpKind {
  const v4 = parseIpv4(text);
  if (v4 >= 0) {
    v4Out[0] = v4;
    return "v4";
  }
  if (!parseIpv6(text, groups)) return null;
  const mapped = mappedIpv4(groups);
  if (mapped >= 0) {
    v4Out[0] = mapped;
    return "v4";
  }
  return "v6";
}

const v4Scratch = new Float64Array(1);

/** CidrParse is a compiled CIDR predicate or the reason the CIDR is invalid. */
export type CidrParse = { ok: true; test: StringPredicate } | { ok: false; reason: string };

const MASK_BITS = /^[+-]?\d+$/;

/**
 * compileCidr validates an IPv4 or IPv6 CIDR the way event-ruler's CIDR.cidr does and pre-computes its range.
 * The prefix length is read like Java's `Integer.parseInt` (a sign is allowed, it must not be negative) and
 * must be below 32 (IPv4) or 128 (IPv6): a single host is matched with its plain address string. Host bits
 * beyond the prefix are ignored, as on AWS: "10.0.0.5/24" covers 10.0.0.0-10.0.0.255.
 */
export function compileCidr(cidr: string): CidrParse {
  // Java's String.split drops trailing empty strings, so "10.0.0.0/8/" has one "/" as far as AWS is concerned.
  const parts = cidr.split("/");
  while (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  if (parts.length !== 2) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)} needs exactly one "/", like "10.0.0.0/24"` };
  }
  const [address, bitsText] = parts as [string, string];
  if (!MASK_BITS.test(bitsText) || Math.abs(Number(bitsText)) > 2 ** 31 - 1) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: the prefix length must be an integer` };
  }
  const bits = Number(bitsText);
  if (bits < 0) return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: the prefix length must not be negative` };

  const network = new Uint16Array(8);
  const v4Out = new Float64Array(1);
  const kind = readIp(address, network, v4Out);
  if (kind === null) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: ${JSON.stringify(address)} is not an IPv4 or IPv6 address` };
  }
  if (kind === "v4") {
    if (bits > 31) {
      return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: an IPv4 prefix length must be below 32; match a single address with its plain string` };
    }
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    const base = ((v4Out[0] as number) & mask) >>> 0;
    return {
      ok: true,
      test: (value) => readIp(value, scratch, v4Scratch) === "v4" && ((v4Scratch[0] as number) & mask) >>> 0 === base,
    };
  }
  if (bits > 127) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: an IPv6 prefix length must be below 128; match a single address with its plain string` };
  }
  const masks = new Uint16Array(8);
  for (let g = 0; g < 8; g++) {
    const groupBits = Math.max(0, Math.min(16, bits - g * 16));
    masks[g] = groupBits === 0 ? 0 : (0xffff << (16 - groupBits)) & 0xffff;
    network[g] = (network[g] as number) & (masks[g] as number);
  }
  // Groups entirely outside the prefix cannot differ, so the match loop stops early.
  const groupsToCompare = Math.ceil(bits / 16);
  return {
    ok: true,
    test: (value) => {
      if (readIp(value, scratch, v4Scratch) !== "v6") return false;
      for (let g = 0; g < groupsToCompare; g++) {
        if (((scratch[g] as number) & (masks[g] as number)) !== network[g]) return false;
      }
      return true;
    },
  };
}

/**
 * compileIpEquals returns a predicate matching every spelling of the same address when `text` is an IP
 * literal (event-ruler turns such a match value into a one-address range, so "2001:db8::1" equals
 * "2001:DB8:0:0:0:0:0:1" and "::ffff:a00:1" equals "10.0.0.1"), or null when `text` is not an IP address.
 */
export function compileIpEquals(text: string): StringPredicate | null {
  const address = new Uint16Array(8);
  const v4Out = new Float64Array(1);
  const kind = readIp(text, address, v4Out);
  if (kind === null) return null;
  if (kind === "v4") {
    const v4 = v4Out[0] as number;
    return (value) => readIp(value, scratch, v4Scratch) === "v4" && v4Scratch[0] === v4;
  }
  return (value) => {
    if (readIp(value, scratch, v4Scratch) !== "v6") return false;
    for (let g = 0; g < 8; g++) if (scratch[g] !== address[g]) return false;
    return true;
  };
}
