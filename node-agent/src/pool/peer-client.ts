// Asking an owner peer for one block: the same S3 GET the edge gets (Range + If-Match),
// signed with the cluster credential. The peer sends the block's CRC32C in
// x-amz-checksum-crc32c; bytes that do not match it (or the length asked for) are refused
// here, so a corrupt peer can cost a refetch but never wrong bytes.
import { crc32c } from "@node-rs/crc32";
import { Agent, request } from "undici";
import { toBase64 } from "../../../s3/bytes.ts";
import { RequestSigner, UNSIGNED_PAYLOAD, uriEncode, type Credentials } from "../../../s3/sigv4.ts";
import { nodeDigests } from "../../../s3/node-digests.ts";
import { PeerCorruptError, PeerUnavailableError } from "./pool-errors.ts";

export const CRC32C_HEADER = "x-amz-checksum-crc32c";
/** Asks the owner to load the block into its cache and answer 204 with no body. */
export const WARM_HEADER = "x-ferry-warm";
/** With a warm: the peer to copy the block from (a leaving node handing its blocks off). */
export const WARM_FROM_HEADER = "x-ferry-warm-from";
/** Cache-Control: only-if-cached asks for a block the peer holds, never one it would have to read. */
export const CACHE_CONTROL_HEADER = "cache-control";
export const ONLY_IF_CACHED = "only-if-cached";
/** With a warm: pin this prefix of the bucket (URI-encoded) before loading. */
export const PIN_HEADER = "x-ferry-pin";

/**
 * How the peer loads a warmed block: "owner" fetches it from the edge (it owns it),
 * "replica" reads it through the pool (the owner already has it), "handoff" copies it
 * from `from` first.
 */
export interface WarmOptions {
  mode: "owner" | "replica" | "handoff";
  from?: string;
  pinPrefix?: string;
}

/** CRC32C of a block in the base64 big-endian form of the S3 checksum headers. */
export function blockCrc32c(data: Uint8Array): string {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, crc32c(Buffer.from(data.buffer, data.byteOffset, data.length)) >>> 0);
  return toBase64(out);
}

export interface BlockRequest {
  bucket: string;
  key: string;
  etag: string;
  offset: number;
  length: number;
}

export class PeerClient {
  private readonly dispatcher: Agent;
  private readonly timeoutMs: number;
  private signer: { credential: Credentials; signer: RequestSigner } | undefined;

  constructor(options: { timeoutMs: number; connections?: number }) {
    this.timeoutMs = options.timeoutMs;
    this.dispatcher = new Agent({ connections: options.connections ?? 16, keepAliveTimeout: 30_000, connectTimeout: Math.min(this.timeoutMs, 3_000), headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
  }

  private signerFor(credential: Credentials): RequestSigner {
    if (this.signer?.credential !== credential) this.signer = { credential, signer: new RequestSigner(credential, { digests: nodeDigests }) };
    return this.signer.signer;
  }

  private async signed(peer: string, credential: Credentials, block: BlockRequest, extra: Record<string, string> = {}): Promise<{ url: URL; headers: Record<string, string> }> {
    const url = new URL(`http://${peer}/${uriEncode(block.bucket, { keepSlash: false })}/${uriEncode(block.key, { keepSlash: true })}`);
    const headers = await this.signerFor(credential).sign({
      method: "GET",
      url,
      headers: { range: `bytes=${block.offset}-${block.offset + block.length - 1}`, "if-match": `"${block.etag}"`, ...extra },
      payloadHash: UNSIGNED_PAYLOAD,
    });
    return { url, headers };
  }

  /** Has the owner load the block into its own cache (no bytes travel back). */
  async warmBlock(peer: string, credential: Credentials, block: BlockRequest, options: WarmOptions = { mode: "owner" }): Promise<void> {
    const extra: Record<string, string> = { [WARM_HEADER]: options.mode === "owner" ? "1" : options.mode };
    if (options.from) extra[WARM_FROM_HEADER] = options.from;
    if (options.pinPrefix !== undefined) extra[PIN_HEADER] = encodeURIComponent(options.pinPrefix);
    const { url, headers } = await this.signed(peer, credential, block, extra);
    let status: number;
    try {
      const response = await request(url, { method: "GET", headers, dispatcher: this.dispatcher, signal: AbortSignal.timeout(this.timeoutMs) });
      await response.body.arrayBuffer();
      status = response.statusCode;
    } catch (error) {
      throw new PeerUnavailableError(`peer warm failed: ${peer}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (status !== 204) throw new PeerUnavailableError(`peer answered ${status} to a warm: ${peer} for ${block.bucket}/${block.key}`);
  }

  /** The block's bytes, checked; PeerUnavailableError or PeerCorruptError otherwise. */
  async fetchBlock(peer: string, credential: Credentials, block: BlockRequest): Promise<Uint8Array> {
    const data = await this.get(peer, credential, block, {});
    if (!data) throw new PeerUnavailableError(`peer answered 504: ${peer} for ${block.bucket}/${block.key}`);
    return data;
  }

  /**
   * The block's bytes if the peer holds it already (HTTP's only-if-cached: it answers 504
   * rather than read the block from anywhere), undefined if not. How a node that now owns
   * a block takes it from the node that owned it before.
   */
  fetchHeldBlock(peer: string, credential: Credentials, block: BlockRequest): Promise<Uint8Array | undefined> {
    return this.get(peer, credential, block, { [CACHE_CONTROL_HEADER]: ONLY_IF_CACHED });
  }

  private async get(peer: string, credential: Credentials, block: BlockRequest, extra: Record<string, string>): Promise<Uint8Array | undefined> {
    const { url, headers } = await this.signed(peer, credential, block, extra);
    let status: number;
    let body: Uint8Array;
    let sentCrc: string | undefined;
    try {
      const response = await request(url, { method: "GET", headers, dispatcher: this.dispatcher, signal: AbortSignal.timeout(this.timeoutMs) });
      body = new Uint8Array(await response.body.arrayBuffer());
      status = response.statusCode;
      const raw = response.headers[CRC32C_HEADER];
      sentCrc = Array.isArray(raw) ? raw[0] : raw;
    } catch (error) {
      throw new PeerUnavailableError(`peer request failed: ${peer}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (status === 504 && extra[CACHE_CONTROL_HEADER] === ONLY_IF_CACHED) return undefined;
    if (status !== 206) throw new PeerUnavailableError(`peer answered ${status}: ${peer} for ${block.bucket}/${block.key}`);
    if (body.length !== block.length || !sentCrc || blockCrc32c(body) !== sentCrc) {
      throw new PeerCorruptError(`peer block failed its checksum: ${peer} for ${block.bucket}/${block.key} at ${block.offset}`);
    }
    return body;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
