// Byte helpers shared by the S3 core: hex, base64, UTF-8 and concatenation, with Web APIs
// only. Decoders are strict (no whitespace, no missing padding) and throw TypeError, so a
// caller parsing request input catches it and answers with its own S3 error code.

const HEX_DIGITS = "0123456789abcdef";
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Bytes per String.fromCharCode call: keeps the argument list well under engine limits. */
const CHAR_CODE_BATCH = 0x8000;

const encoder = new TextEncoder();

/** Lower-case hex, as SigV4 wants it. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += HEX_DIGITS[byte >> 4]! + HEX_DIGITS[byte & 15]!;
  return out;
}

/** Parses hex of either case; throws TypeError on odd length or a non-hex character. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (!HEX_RE.test(hex)) throw new TypeError(`invalid hex: ${hex.slice(0, 80)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Standard base64 with padding (the form of Content-MD5 and x-amz-checksum-*). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHAR_CODE_BATCH) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHAR_CODE_BATCH));
  }
  return btoa(binary);
}

/** Parses padded standard base64; throws TypeError on anything else. */
export function fromBase64(base64: string): Uint8Array<ArrayBuffer> {
  if (!BASE64_RE.test(base64)) throw new TypeError(`invalid base64: ${base64.slice(0, 80)}`);
  const binary = atob(base64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** UTF-8 encoding of a string. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  // encode() always returns a fresh ArrayBuffer; workers-types just declares it loosely.
  return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

/** One new array holding all parts in order. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
