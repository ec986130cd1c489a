// AWS Signature Version 4 for S3: canonical forms, signing keys, header signing and
// presigned URLs, with Web Crypto only. The verifier (sigv4-verify.ts) builds the same
// canonical request from what arrived, so client and server can never disagree on it.
import { toHex, utf8 } from "./bytes.ts";

export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** Presigned URLs may live at most 7 days, as in S3. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** One credential scope: `date/region/service/aws4_request`. */
export interface Scope {
  /** YYYYMMDD */
  date: string;
  region: string;
  service: string;
}

export function scopeString(scope: Scope): string {
  return `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
}

/** `YYYYMMDDTHHMMSSZ` */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** Parses `YYYYMMDDTHHMMSSZ`; undefined when malformed. */
export function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** RFC 3986 encoding as SigV4 defines it; `/` kept when encoding a path. */
export function uriEncode(text: string, options: { keepSlash: boolean }): string {
  let out = "";
  for (const char of text) {
    if (UNRESERVED.test(char) || (options.keepSlash && char === "/")) {
      out += char;
    } else {
      for (const byte of utf8(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

/** Decodes `%XX` escapes only (a `+` stays a plus, as S3 reads paths). Throws URIError. */
export function uriDecode(text: string): string {
  return decodeURIComponent(text);
}

/** Query pairs decoded from a raw query string (without `?`), in order. Throws URIError. */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  if (rawQuery === "") return [];
  return rawQuery.split("&").map((part) => {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    return [uriDecode(name), uriDecode(value)];
  });
}

export function canonicalQueryString(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs
    .map(([name, value]) => [uriEncode(name, { keepSlash: false }), uriEncode(value, { keepSlash: false })] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

/** Header value in canonical form: trimmed, inner runs of spaces folded to one. */
export function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, " ");
}

export interface CanonicalRequestParts {
  method: string;
  /** The canonical URI: the path, URI-encoded once (S3 does not double-encode). */
  canonicalUri: string;
  query: ReadonlyArray<readonly [string, string]>;
  /** Lower-case header name → value, for every signed header. */
  headers: ReadonlyMap<string, string>;
  /** Lower-case, sorted. */
  signedHeaders: readonly string[];
  payloadHash: string;
}

export function canonicalRequest(parts: CanonicalRequestParts): string {
  const headerLines = parts.signedHeaders.map((name) => `${name}:${canonicalHeaderValue(parts.headers.get(name) ?? "")}\n`);
  return [
    parts.method,
    parts.canonicalUri,
    canonicalQueryString(parts.query),
    headerLines.join(""),
    parts.signedHeaders.join(";"),
    parts.payloadHash,
  ].join("\n");
}

export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  // Web Crypto takes views of any ArrayBuffer at runtime; the cast only narrows the type.
  const bytes = typeof data === "string" ? utf8(data) : (data as Uint8Array<ArrayBuffer>);
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export function stringToSign(requestDate: string, scope: Scope, canonicalRequestHash: string): string {
  return [SIGV4_ALGORITHM, requestDate, scopeString(scope), canonicalRequestHash].join("\n");
}

async function hmac(key: Uint8Array<ArrayBuffer> | CryptoKey, data: string): Promise<Uint8Array<ArrayBuffer>> {
  const cryptoKey =
    key instanceof Uint8Array
      ? await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      : key;
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, utf8(data)));
}

/** The derived key `kSigning` as a Web Crypto HMAC key that can sign and verify. */
export async function deriveSigningKey(secretAccessKey: string, scope: Scope): Promise<CryptoKey> {
  const kDate = await hmac(utf8(`AWS4${secretAccessKey}`), scope.date);
  const kRegion = await hmac(kDate, scope.region);
  const kService = await hmac(kRegion, scope.service);
  const kSigning = await hmac(kService, "aws4_request");
  return crypto.subtle.importKey("raw", kSigning, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

export async function signString(signingKey: CryptoKey, text: string): Promise<string> {
  return toHex(await hmac(signingKey, text));
}

/** Canonical URI of a URL path as S3 clients compute it: decode, then encode once. */
export function canonicalUriOf(rawPath: string): string {
  return uriEncode(uriDecode(rawPath), { keepSlash: true });
}

export interface SignRequestOptions {
  method: string;
  url: URL;
  /** Headers to send and sign (host is added). */
  headers?: Record<string, string>;
  credentials: Credentials;
  region?: string;
  service?: string;
  /** Hex SHA-256 of the body, or UNSIGNED-PAYLOAD / a STREAMING-* marker. Default: empty body. */
  payloadHash?: string;
  now?: Date;
}

/**
 * SHA-256 and HMAC-SHA256 computed on the calling thread (node:crypto's createHash and
 * createHmac: see s3/node-digests.ts). This module stays on Web Crypto so the Worker can use
 * it; in Node, Web Crypto runs each digest as a job on the libuv pool, where a busy cache's
 * file I/O made one signature wait up to 60 ms (measured in the agent under load).
 */
export interface SyncDigests {
  sha256Hex(data: string): string;
  hmacSha256(key: Uint8Array, data: string): Uint8Array;
}

/**
 * Signs requests with one key, deriving the signing key once per day and region instead
 * of on every request (four HMACs saved per request on hot paths like the agent's fills).
 */
export class RequestSigner {
  private readonly credentials: Credentials;
  private readonly region: string;
  private readonly service: string;
  private readonly digests: SyncDigests | undefined;
  private cached: { scope: string; key: Promise<CryptoKey> } | undefined;
  private cachedSync: { scope: string; key: Uint8Array } | undefined;

  constructor(credentials: Credentials, options: { region?: string; service?: string; digests?: SyncDigests } = {}) {
    this.credentials = credentials;
    this.region = options.region ?? "auto";
    this.service = options.service ?? "s3";
    this.digests = options.digests;
  }

  private signingKey(scope: Scope): Promise<CryptoKey> {
    const id = scopeString(scope);
    if (this.cached?.scope !== id) this.cached = { scope: id, key: deriveSigningKey(this.credentials.secretAccessKey, scope) };
    return this.cached.key;
  }

  /** The signature of `text`, with the synchronous digests when given. */
  private async signature(scope: Scope, requestDate: string, canonical: string): Promise<string> {
    const d = this.digests;
    if (!d) return signString(await this.signingKey(scope), stringToSign(requestDate, scope, await sha256Hex(canonical)));
    const id = scopeString(scope);
    if (this.cachedSync?.scope !== id) {
      let key = d.hmacSha256(utf8(`AWS4${this.credentials.secretAccessKey}`), scope.date);
      for (const part of [scope.region, scope.service, "aws4_request"]) key = d.hmacSha256(key, part);
      this.cachedSync = { scope: id, key };
    }
    return toHex(d.hmacSha256(this.cachedSync.key, stringToSign(requestDate, scope, d.sha256Hex(canonical))));
  }

  /** Headers to send (host, x-amz-date, x-amz-content-sha256, authorization, and the given ones). */
  async sign(options: Omit<SignRequestOptions, "credentials" | "region" | "service">): Promise<Record<string, string>> {
    const now = options.now ?? new Date();
    const scope: Scope = { date: amzDate(now).slice(0, 8), region: this.region, service: this.service };
    const payloadHash = options.payloadHash ?? EMPTY_SHA256;
    const headers: Record<string, string> = {
      ...Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      host: options.url.host,
      "x-amz-date": amzDate(now),
      "x-amz-content-sha256": payloadHash,
    };
    const signedHeaders = Object.keys(headers).sort();
    const canonical = canonicalRequest({
      method: options.method,
      canonicalUri: canonicalUriOf(options.url.pathname),
      query: parseQuery(options.url.search.slice(1)),
      headers: new Map(Object.entries(headers)),
      signedHeaders,
      payloadHash,
    });
    const signature = await this.signature(scope, headers["x-amz-date"] ?? "", canonical);
    headers["authorization"] =
      `${SIGV4_ALGORITHM} Credential=${this.credentials.accessKeyId}/${scopeString(scope)}, ` +
      `SignedHeaders=${signedHeaders.join(";")}, Signature=${signature}`;
    return headers;
  }
}

/** Signs one request in the Authorization-header form; returns every header to send. */
export async function signRequest(options: SignRequestOptions): Promise<Record<string, string>> {
  const signer = new RequestSigner(options.credentials, { ...(options.region ? { region: options.region } : {}), ...(options.service ? { service: options.service } : {}) });
  return signer.sign(options);
}

export interface PresignOptions {
  method: string;
  url: URL;
  credentials: Credentials;
  expiresSeconds: number;
  region?: string;
  now?: Date;
}

/** A presigned URL (query-string form, UNSIGNED-PAYLOAD, only `host` signed). */
export async function presignUrl(options: PresignOptions): Promise<URL> {
  if (!Number.isInteger(options.expiresSeconds) || options.expiresSeconds < 1 || options.expiresSeconds > MAX_PRESIGN_SECONDS) {
    throw new RangeError(`presign expiry must be 1..${MAX_PRESIGN_SECONDS} seconds, got ${options.expiresSeconds}`);
  }
  const now = options.now ?? new Date();
  const scope: Scope = { date: amzDate(now).slice(0, 8), region: options.region ?? "auto", service: "s3" };
  const url = new URL(options.url);
  const query = parseQuery(url.search.slice(1));
  query.push(
    ["X-Amz-Algorithm", SIGV4_ALGORITHM],
    ["X-Amz-Credential", `${options.credentials.accessKeyId}/${scopeString(scope)}`],
    ["X-Amz-Date", amzDate(now)],
    ["X-Amz-Expires", String(options.expiresSeconds)],
    ["X-Amz-SignedHeaders", "host"],
  );
  const canonical = canonicalRequest({
    method: options.method,
    canonicalUri: canonicalUriOf(url.pathname),
    query,
    headers: new Map([["host", url.host]]),
    signedHeaders: ["host"],
    payloadHash: UNSIGNED_PAYLOAD,
  });
  const key = await deriveSigningKey(options.credentials.secretAccessKey, scope);
  const signature = await signString(key, stringToSign(amzDate(now), scope, await sha256Hex(canonical)));
  query.push(["X-Amz-Signature", signature]);
  url.search = canonicalQueryString(query);
  return url;
}
