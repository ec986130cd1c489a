// Helpers for tests of the edge inside workerd: keys issued through the real admin route,
// requests signed with the project's own SigV4 code (header and presigned forms),
// aws-chunked bodies framed and signed as the AWS SDKs send them, and S3 XML readers.
// Storage is per test file (shared by the tests of one file), so tests use unique keys.
import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { concatBytes, utf8 } from "../../s3/bytes.ts";
import { checksumBase64, type ChecksumAlgorithm } from "../../s3/checksums.ts";
import {
  EMPTY_SHA256,
  UNSIGNED_PAYLOAD,
  canonicalQueryString,
  deriveSigningKey,
  presignUrl,
  scopeString,
  sha256Hex,
  signRequest,
  signString,
  uriEncode,
  type Credentials,
  type Scope,
} from "../../s3/sigv4.ts";
import type { Env } from "../../worker/src/env.ts";
import type { Action, Grant } from "../../worker/src/keys/policy.ts";

export const ORIGIN = "http://ferry.test";
export const ADMIN_TOKEN = "test-admin-token";
export const MiB = 1024 * 1024;

/** The edge's bindings as the tests see them (same storage the Worker uses). */
export const testEnv = env as unknown as Env & { BUCKET_DATASETS: R2Bucket; BUCKET_SHARED: R2Bucket };

export const r2 = (bucket: "datasets" | "shared"): R2Bucket => (bucket === "datasets" ? testEnv.BUCKET_DATASETS : testEnv.BUCKET_SHARED);

/**
 * The Worker's default export, called in the same workerd process as the tests. An
 * in-process fetch carries no Host header of its own, so it gets the URL's, as over HTTP.
 */
export function edgeFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  const url = new URL(input);
  const headers = new Headers(init.headers);
  if (!headers.has("host")) headers.set("host", url.host);
  return (exports as unknown as { default: Fetcher }).default.fetch(url, { ...init, headers });
}

/** A short random suffix that keeps tests of one file (which share storage) apart. */
export function unique(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

export function bytesOf(length: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

// ---- Admin API ---------------------------------------------------------------------------

export function grant(actions: string, bucket: string, prefix = ""): Grant {
  return { bucket, prefix, actions: actions.split(",") as Action[] };
}

export interface IssuedKey extends Credentials {
  name: string;
  grants: Grant[];
  expiresAt: string | null;
  status: string;
}

export function adminFetch(method: string, path: string, options: { json?: unknown; body?: string; token?: string | null } = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  if (token !== null) headers["authorization"] = `Bearer ${token}`;
  let body: string | undefined = options.body;
  if (options.json !== undefined) body = JSON.stringify(options.json);
  if (body !== undefined) headers["content-type"] = "application/json";
  return edgeFetch(`${ORIGIN}/_ferry/admin${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
}

export async function issueKey(input: { grants: Grant[]; name?: string; expiresInSeconds?: number; clusters?: string[] }): Promise<IssuedKey> {
  const response = await adminFetch("POST", "/keys", { json: { name: input.name ?? unique("test-"), ...input } });
  const body = await response.text();
  if (response.status !== 201) throw new Error(`issue key failed: ${response.status} ${body}`);
  return JSON.parse(body) as IssuedKey;
}

export async function revokeKey(accessKeyId: string): Promise<void> {
  const response = await adminFetch("DELETE", `/keys/${accessKeyId}`);
  if (response.status !== 200) throw new Error(`revoke key failed: ${response.status} ${await response.text()}`);
}

/** Every row of the KeyRegistry Durable Object's SQLite table, as stored. */
export function keyRegistryRows(): Promise<Array<Record<string, unknown>>> {
  const stub = testEnv.KEY_REGISTRY.get(testEnv.KEY_REGISTRY.idFromName("keys"));
  return runInDurableObject(stub, (_instance: unknown, state: DurableObjectState) => state.storage.sql.exec("SELECT * FROM keys").toArray() as Array<Record<string, unknown>>);
}

// ---- Signed S3 requests -----------------------------------------------------------------

/** `/bucket/key` with the key URI-encoded the way S3 clients encode it. */
export function objectPath(bucket: string, key = ""): string {
  return key === "" ? `/${bucket}` : `/${bucket}/${uriEncode(key, { keepSlash: true })}`;
}

export interface S3RequestInit {
  /** Query parameters; "" for flags such as `uploads` or `delete`. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** "sha256" (default): the body's real hex SHA-256; "unsigned": UNSIGNED-PAYLOAD; else sent as given. */
  payloadHash?: string;
  /** Signing time; default the current time. */
  now?: Date;
  region?: string;
}

/** A signed request not yet sent, so a test can tamper with any part of it. */
export interface SignedParts {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Uint8Array | undefined;
}

export function urlOf(path: string, query: Record<string, string> = {}): URL {
  const search = canonicalQueryString(Object.entries(query));
  return new URL(`${ORIGIN}${path}${search ? `?${search}` : ""}`);
}

export function send(parts: SignedParts): Promise<Response> {
  const headers = new Headers();
  // Sent exactly as signed (Host included).
  for (const [name, value] of Object.entries(parts.headers)) headers.set(name, value);
  return edgeFetch(parts.url, { method: parts.method, headers, ...(parts.body !== undefined ? { body: parts.body } : {}) });
}

export class S3TestClient {
  readonly credentials: Credentials;

  constructor(credentials: Credentials) {
    this.credentials = { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey };
  }

  async sign(method: string, path: string, init: S3RequestInit = {}): Promise<SignedParts> {
    const body = typeof init.body === "string" ? utf8(init.body) : init.body;
    const mode = init.payloadHash ?? "sha256";
    const payloadHash = mode === "sha256" ? await sha256Hex(body ?? new Uint8Array(0)) : mode === "unsigned" ? UNSIGNED_PAYLOAD : mode;
    const url = urlOf(path, init.query);
    const headers = await signRequest({
      method,
      url,
      headers: init.headers ?? {},
      credentials: this.credentials,
      payloadHash,
      ...(init.now ? { now: init.now } : {}),
      ...(init.region ? { region: init.region } : {}),
    });
    return { method, url, headers, body };
  }

  async request(method: string, path: string, init: S3RequestInit = {}): Promise<Response> {
    return send(await this.sign(method, path, init));
  }

  get(bucket: string, key: string, init: S3RequestInit = {}): Promise<Response> {
    return this.request("GET", objectPath(bucket, key), init);
  }

  head(bucket: string, key: string, init: S3RequestInit = {}): Promise<Response> {
    return this.request("HEAD", objectPath(bucket, key), init);
  }

  put(bucket: string, key: string, body: Uint8Array | string, init: S3RequestInit = {}): Promise<Response> {
    return this.request("PUT", objectPath(bucket, key), { ...init, body });
  }

  delete(bucket: string, key: string, init: S3RequestInit = {}): Promise<Response> {
    return this.request("DELETE", objectPath(bucket, key), init);
  }

  /** ListObjectsV2 with the given query parameters. */
  list(bucket: string, query: Record<string, string> = {}): Promise<Response> {
    return this.request("GET", objectPath(bucket), { query: { "list-type": "2", ...query } });
  }

  presign(method: string, path: string, options: { expiresSeconds?: number; now?: Date; query?: Record<string, string> } = {}): Promise<URL> {
    return presignUrl({
      method,
      url: urlOf(path, options.query),
      credentials: this.credentials,
      expiresSeconds: options.expiresSeconds ?? 3600,
      ...(options.now ? { now: options.now } : {}),
    });
  }

  /** Sends `data` as an aws-chunked body, framed (and signed) the way the AWS SDKs do it. */
  async awsChunked(method: string, path: string, data: Uint8Array, init: AwsChunkedInit): Promise<Response> {
    const chunkBytes = init.chunkBytes ?? 64 * 1024;
    const given = init.headers?.["content-encoding"];
    const headers: Record<string, string> = {
      ...(init.headers ?? {}),
      "content-encoding": given ? `aws-chunked,${given}` : "aws-chunked",
      "x-amz-decoded-content-length": String(init.decodedLength ?? data.length),
    };
    const trailerValue = init.trailerValue ?? checksumBase64(init.trailerAlgorithm ?? "CRC32", data);
    const trailerName = `x-amz-checksum-${(init.trailerAlgorithm ?? "CRC32").toLowerCase()}`;
    const trailers = init.mode === "signed" ? {} : { [trailerName]: trailerValue };
    if (init.mode !== "signed") headers["x-amz-trailer"] = trailerName;
    const payloadHash = {
      signed: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "signed-trailer": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
      "unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    }[init.mode];
    const parts = await this.sign(method, path, { ...(init.query ? { query: init.query } : {}), headers, payloadHash });
    const frames =
      init.mode === "unsigned-trailer"
        ? unsignedChunkFrames(data, chunkBytes, trailers)
        : await signedChunkFrames(data, chunkBytes, await chunkSignerFor(parts, this.credentials.secretAccessKey), trailers);
    const encoded = concatBytes(...(init.rewriteFrames ? init.rewriteFrames(frames) : frames));
    return send({ ...parts, body: init.rewrite ? init.rewrite(encoded) : encoded });
  }
}

export function s3(credentials: Credentials): S3TestClient {
  return new S3TestClient(credentials);
}

// ---- aws-chunked bodies -------------------------------------------------------------------

export interface AwsChunkedInit {
  /** signed: STREAMING-AWS4-HMAC-SHA256-PAYLOAD; signed-trailer: …-TRAILER; unsigned-trailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
  mode: "signed" | "signed-trailer" | "unsigned-trailer";
  /** Decoded bytes per chunk (the last may be shorter); default 64 KiB. */
  chunkBytes?: number;
  /** Trailing checksum algorithm (trailer modes); default CRC32. */
  trailerAlgorithm?: ChecksumAlgorithm;
  /** Base64 trailer value to send; default the real checksum of the data. */
  trailerValue?: string;
  /** x-amz-decoded-content-length to declare; default the data's length. */
  decodedLength?: number;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** Rewrites the frames (one per chunk, then the final frame with any trailers). */
  rewriteFrames?: (frames: Uint8Array[]) => Uint8Array[];
  /** Rewrites the whole encoded body before it is sent (truncation, corruption). */
  rewrite?: (encoded: Uint8Array) => Uint8Array;
}

export interface ChunkSigner {
  amzDate: string;
  scope: Scope;
  signingKey: CryptoKey;
  seedSignature: string;
}

/** What a client needs to sign chunks after signing the request headers. */
export async function chunkSignerFor(parts: SignedParts, secretAccessKey: string): Promise<ChunkSigner> {
  const authorization = parts.headers["authorization"] ?? "";
  const credential = /Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(authorization);
  const seed = /Signature=([0-9a-f]{64})/.exec(authorization)?.[1];
  const amzDate = parts.headers["x-amz-date"];
  if (!credential || !seed || !amzDate) throw new Error(`not a SigV4 header-signed request: ${authorization}`);
  const scope: Scope = { date: credential[1] ?? "", region: credential[2] ?? "", service: credential[3] ?? "" };
  return { amzDate, scope, signingKey: await deriveSigningKey(secretAccessKey, scope), seedSignature: seed };
}

function slices(data: Uint8Array, chunkBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < data.length; offset += chunkBytes) out.push(data.subarray(offset, offset + chunkBytes));
  return out;
}

/** Signed chunks chained from the seed signature; trailers (if any) signed after the final chunk. */
export async function signedChunkFrames(data: Uint8Array, chunkBytes: number, signer: ChunkSigner, trailers: Record<string, string> = {}): Promise<Uint8Array[]> {
  const scope = scopeString(signer.scope);
  let previous = signer.seedSignature;
  const sign = async (chunk: Uint8Array): Promise<string> => {
    previous = await signString(signer.signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", signer.amzDate, scope, previous, EMPTY_SHA256, await sha256Hex(chunk)].join("\n"));
    return previous;
  };
  const frames: Uint8Array[] = [];
  for (const chunk of slices(data, chunkBytes)) {
    frames.push(concatBytes(utf8(`${chunk.length.toString(16)};chunk-signature=${await sign(chunk)}\r\n`), chunk, utf8("\r\n")));
  }
  let final = `0;chunk-signature=${await sign(new Uint8Array(0))}\r\n`;
  const names = Object.keys(trailers);
  if (names.length) {
    const canonical = names.map((name) => `${name}:${trailers[name]}\n`).join("");
    const trailerSignature = await signString(signer.signingKey, ["AWS4-HMAC-SHA256-TRAILER", signer.amzDate, scope, previous, await sha256Hex(canonical)].join("\n"));
    final += names.map((name) => `${name}:${trailers[name]}\r\n`).join("") + `x-amz-trailer-signature:${trailerSignature}\r\n`;
  }
  frames.push(utf8(`${final}\r\n`));
  return frames;
}

/** Unsigned chunks (STREAMING-UNSIGNED-PAYLOAD-TRAILER) with the trailers after the final chunk. */
export function unsignedChunkFrames(data: Uint8Array, chunkBytes: number, trailers: Record<string, string>): Uint8Array[] {
  const frames = slices(data, chunkBytes).map((chunk) => concatBytes(utf8(`${chunk.length.toString(16)}\r\n`), chunk, utf8("\r\n")));
  frames.push(utf8(`0\r\n${Object.entries(trailers).map(([name, value]) => `${name}:${value}\r\n`).join("")}\r\n`));
  return frames;
}

// ---- Responses ----------------------------------------------------------------------------

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    switch (entity) {
      case "amp": return "&";
      case "lt": return "<";
      case "gt": return ">";
      case "quot": return '"';
      case "apos": return "'";
      default: return String.fromCodePoint(entity.startsWith("#x") ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1)));
    }
  });
}

/** Inner texts of every `<tag>` element (not nested in itself), entities decoded for leaves. */
export function xmlAll(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>|<${tag}(?:\\s[^>]*)?/>`, "g");
  for (const m of xml.matchAll(re)) {
    const inner = m[1] ?? "";
    out.push(inner.includes("<") ? inner : decodeEntities(inner));
  }
  return out;
}

export const xmlOne = (xml: string, tag: string): string | undefined => xmlAll(xml, tag)[0];

/** Keys of a ListObjects(V2) result's Contents, in document order. */
export const listedKeys = (xml: string): string[] => xmlAll(xml, "Contents").map((c) => xmlOne(c, "Key") ?? "");
export const listedPrefixes = (xml: string): string[] => xmlAll(xml, "CommonPrefixes").map((c) => xmlOne(c, "Prefix") ?? "");

export interface S3ErrorDocument {
  code: string | undefined;
  message: string | undefined;
  requestId: string | undefined;
  xml: string;
}

/**
 * Asserts an S3 error answer: status, an XML <Error> with the code and a RequestId equal to
 * the x-amz-request-id header. HEAD and 304 answers carry no body: status and id only.
 */
export async function expectS3Error(response: Response, status: number, code: string, method = "GET"): Promise<S3ErrorDocument> {
  const headerId = response.headers.get("x-amz-request-id");
  expect(headerId, "x-amz-request-id").toMatch(/^[0-9A-F]{16}$/);
  if (method === "HEAD" || status === 304) {
    const body = await response.text();
    expect({ status: response.status, body }).toEqual({ status, body: "" });
    return { code: undefined, message: undefined, requestId: headerId ?? undefined, xml: "" };
  }
  expect(response.headers.get("content-type")).toBe("application/xml");
  const xml = await response.text();
  const error = { code: xmlOne(xml, "Code"), message: xmlOne(xml, "Message"), requestId: xmlOne(xml, "RequestId"), xml };
  expect({ status: response.status, code: error.code }, error.xml).toEqual({ status, code });
  expect(error.xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\s*<Error>/);
  expect(error.requestId).toBe(headerId);
  return error;
}

/** Asserts a 2xx answer, showing the body when it is not one. */
export async function expectOk(response: Response, status = 200): Promise<string> {
  const body = await response.text();
  expect({ status: response.status, body: response.status === status ? "" : body }).toEqual({ status, body: "" });
  return body;
}

/** Hex SHA-256 and length of some bytes: compares megabytes faster than a deep equal. */
export async function digestOf(data: Uint8Array): Promise<string> {
  return `${data.length}:${await sha256Hex(data)}`;
}

/** digestOf() the object as stored in R2, or "missing". */
export async function storedDigest(bucket: "datasets" | "shared", key: string): Promise<string> {
  const object = await r2(bucket).get(key);
  return object ? digestOf(new Uint8Array(await object.arrayBuffer())) : "missing";
}

/** Keys stored under a prefix, read straight from the R2 binding (the source of truth). */
export async function storedKeys(bucket: "datasets" | "shared", prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await r2(bucket).list({ prefix, ...(cursor ? { cursor } : {}) });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}
