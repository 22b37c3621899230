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

/** CidrParse is a compiled CIDR predicate or the reason the CIDR is invalid. */
export type CidrParse = { ok: true; test: StringPredicate } | { ok: false; reason: string };

const DIGITS_ONLY = /^\d{1,3}$/;

/**
 * compileCidr validates an IPv4 or IPv6 CIDR and pre-computes its network and mask. As in AWS, the prefix
 * length must be below 32 (IPv4) or 128 (IPv6): a single host is matched with its plain address string.
 * Unlike AWS, host bits must be zero, because AWS silently reads "10.0.0.5/24" as the odd range
 * 10.0.0.5-10.0.0.255 and rejecting it is safer than guessing.
 */
export function compileCidr(cidr: string): CidrParse {
  const slash = cidr.indexOf("/");
  if (slash < 0 || slash !== cidr.lastIndexOf("/")) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)} needs exactly one "/", like "10.0.0.0/24"` };
  }
  const address = cidr.slice(0, slash);
  const bitsText = cidr.slice(slash + 1);
  if (!DIGITS_ONLY.test(bitsText)) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)} prefix length must be a non-negative integer` };
  }
  const bits = Number(bitsText);

  const v4 = parseIpv4(address);
  if (v4 >= 0) {
    if (bits > 31) {
      return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: IPv4 prefix length must be below 32; match a single address with its plain string` };
    }
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (((v4 & mask) >>> 0) !== v4) {
      return { ok: false, reason: `cidr ${JSON.stringify(cidr)} has host bits set; did you mean ${JSON.stringify(`${formatIpv4((v4 & mask) >>> 0)}/${bits}`)}?` };
    }
    return {
      ok: true,
      test: (value) => {
        const ip = parseIpv4(value);
        return ip >= 0 && ((ip & mask) >>> 0) === v4;
      },
    };
  }

  const network = new Uint16Array(8);
  if (!parseIpv6(address, network)) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: ${JSON.stringify(address)} is not an IPv4 or IPv6 address` };
  }
  if (bits > 127) {
    return { ok: false, reason: `cidr ${JSON.stringify(cidr)}: IPv6 prefix length must be below 128; match a single address with its plain string` };
  }
  const masks = new Uint16Array(8);
  for (let g = 0; g < 8; g++) {
    const groupBits = Math.max(0, Math.min(16, bits - g * 16));
    masks[g] = groupBits === 0 ? 0 : (0xffff << (16 - groupBits)) & 0xffff;
    if (((network[g] as number) & (masks[g] as number)) !== network[g]) {
      return { ok: false, reason: `cidr ${JSON.stringify(cidr)} has host bits set beyond the /${bits} prefix` };
    }
  }
  // Groups entirely outside the prefix cannot differ, so the match loop stops early.
  const groupsToCompare = Math.ceil(bits / 16);
  return {
    ok: true,
    test: (value) => {
      if (!parseIpv6(value, scratch)) return false;
      for (let g = 0; g < groupsToCompare; g++) {
        if (((scratch[g] as number) & (masks[g] as number)) !== network[g]) return false;
      }
      return true;
    },
  };
}

/**
 * compileIpEquals returns a predicate matching other spellings of the same address when `text` is an IP
 * literal (AWS compares exact IP values by address, so "2001:db8::1" equals "2001:DB8:0:0:0:0:0:1"),
 * or null when `text` is not an IP and plain string equality is all there is.
 */
export function compileIpEquals(text: string): StringPredicate | null {
  const v4 = parseIpv4(text);
  if (v4 >= 0) return (value) => parseIpv4(value) === v4;
  const address = new Uint16Array(8);
  if (!parseIpv6(text, address)) return null;
  return (value) => {
    if (!parseIpv6(value, scratch)) return false;
    for (let g = 0; g < 8; g++) if (scratch[g] !== address[g]) return false;
    return true;
  };
}

/** isIpLiteral is true when `text` parses as an IPv4 or IPv6 address. */
export function isIpLiteral(text: string): boolean {
  return parseIpv4(text) >= 0 || parseIpv6(text, new Uint16Array(8));
}

function formatIpv4(address: number): string {
  return [address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].join(".");
}
