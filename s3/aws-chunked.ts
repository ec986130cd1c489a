// Streaming decoder for `Content-Encoding: aws-chunked` request bodies (SigV4 streaming,
// signed or unsigned, with or without trailers), as the AWS SDKs and CLI send them.
// Invariants:
// - Bounded memory: one chunk (≤ maxChunkBytes) plus one header or trailer line is held;
//   input may arrive in fragments of any size, split anywhere.
// - Nothing unverified is emitted: a chunk is emitted only after its own signature is
//   verified AND the next chunk header has been parsed and found valid (size within the
//   limits and within x-amz-decoded-content-length). The LAST data chunk is held back until
//   the final chunk, its signature, every trailer and the trailer signature are read and
//   verified and the decoded length matches, so a consumer that commits once the declared
//   length has arrived never commits a body that later proves bad.
// - On any failure the output stream errors and `trailers` rejects with the same S3Error;
//   trailers resolve only after the whole body has been read and verified.
// - Emitted arrays are fresh copies the consumer owns (never views of input fragments).
import { S3Error } from "./errors.ts";

export interface ChunkSignatureVerifier {
  /** Called once per chunk in order, including the final empty chunk; data is that chunk's payload. Resolve false when the signature is wrong. */
  verifyChunk(signature: string, data: Uint8Array): Promise<boolean>;
  /** Called once with the trailer signature and the trailer lines exactly as received ("name:value\n" each, normalised per the SigV4 trailer spec). */
  verifyTrailer(signature: string, canonicalTrailers: string): Promise<boolean>;
}

export interface AwsChunkedOptions {
  /** Chunks must carry chunk-signature (and a verifier must be given). */
  signed: boolean;
  /** Lower-cased names from x-amz-trailer; [] means no trailer section expected. */
  trailerNames: string[];
  /** x-amz-trailer-signature required (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER). */
  trailerSigned: boolean;
  /** x-amz-decoded-content-length in bytes: the decoded total must match exactly. */
  decodedContentLength?: number;
  verifier?: ChunkSignatureVerifier;
  /** Refuse bigger declared chunk sizes, in bytes (default 16 MiB). */
  maxChunkBytes?: number;
}

const DEFAULT_MAX_CHUNK_BYTES = 16 * 1024 * 1024;
/** hex size (≤ 16 digits) + ";chunk-signature=" + 64 hex, with room to spare. */
const MAX_CHUNK_HEADER_BYTES = 256;
const MAX_TRAILER_LINE_BYTES = 1024;
const MAX_TRAILER_SECTION_BYTES = 16 * 1024;
const TRAILER_SIGNATURE_NAME = "x-amz-trailer-signature";
const SIZE_RE = /^[0-9a-fA-F]{1,16}$/;
const SIGNATURE_RE = /^[0-9a-f]{64}$/;
const TRAILER_NAME_RE = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const TRAILER_VALUE_RE = /^[\x20-\x7e]*$/;
const CR = 0x0d;
const LF = 0x0a;

const framingError = (message: string): S3Error => new S3Error("IncompleteBody", message);
const trailerError = (message: string): S3Error => new S3Error("MalformedTrailerError", message);

/** Pulls bytes from the request body on demand: lines and exact-length reads. */
class ByteSource {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #fragment: Uint8Array = new Uint8Array(0);
  #offset = 0;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.#reader = reader;
  }

  /** Makes unread bytes available; false at the end of the body. */
  async #fill(): Promise<boolean> {
    while (this.#offset >= this.#fragment.length) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await this.#reader.read();
      } catch (cause) {
        throw new S3Error("IncompleteBody", "read failed: request body", { cause });
      }
      if (result.done) return false;
      this.#fragment = result.value;
      this.#offset = 0;
    }
    return true;
  }

  /** One CRLF-terminated line without its CRLF, as latin1 text. */
  async readLine(maxBytes: number, what: string): Promise<string> {
    let line = "";
    for (;;) {
      if (!(await this.#fill())) throw framingError(`body ended inside ${what}`);
      const start = this.#offset;
      const window = this.#fragment.subarray(start, start + maxBytes + 2 - line.length);
      const lf = window.indexOf(LF);
      const end = lf === -1 ? window.length : lf;
      line += String.fromCharCode(...window.subarray(0, end));
      this.#offset = start + end + (lf === -1 ? 0 : 1);
      if (lf !== -1) {
        if (line.charCodeAt(line.length - 1) !== CR) throw framingError(`${what} not terminated by CRLF`);
        return line.slice(0, -1);
      }
      if (line.length > maxBytes + 1) throw framingError(`${what} longer than ${maxBytes} bytes`);
    }
  }

  /** Exactly n bytes, copied into a fresh array. */
  async readExact(n: number, what: string): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (!(await this.#fill())) throw framingError(`body ended inside ${what}`);
      const take = Math.min(n - filled, this.#fragment.length - this.#offset);
      out.set(this.#fragment.subarray(this.#offset, this.#offset + take), filled);
      this.#offset += take;
      filled += take;
    }
    return out;
  }

  async expectCrlf(what: string): Promise<void> {
    const bytes = await this.readExact(2, what);
    if (bytes[0] !== CR || bytes[1] !== LF) throw framingError(`${what} not followed by CRLF`);
  }

  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  async cancel(reason: unknown): Promise<void> {
    // Best effort: the source may already be errored or closed, and the caller is about to
    // report `reason` itself, so a failure to cancel adds nothing.
    await this.#reader.cancel(reason).catch(() => undefined);
  }
}

interface ChunkHeader {
  sizeBytes: number;
  signature: string | undefined;
}

/** The decoding state machine behind the output stream's pull(). */
class Decoder {
  readonly #source: ByteSource;
  readonly #options: AwsChunkedOptions;
  readonly #maxChunkBytes: number;
  #held: Uint8Array | undefined;
  #totalBytes = 0;

  constructor(source: ByteSource, options: AwsChunkedOptions) {
    this.#source = source;
    this.#options = options;
    this.#maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  }

  /**
   * Emits at most one chunk, or closes. Reads on until a header proves the held chunk
   * valid; after emitting it, reads the next chunk (pipelined with the consumer).
   */
  async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<Record<string, string> | undefined> {
    for (;;) {
      const header = await this.#readChunkHeader();
      if (header.sizeBytes === 0) {
        const trailers = await this.#finish(header);
        if (this.#held) controller.enqueue(this.#held);
        this.#held = undefined;
        return trailers;
      }
      const previous = this.#held;
      this.#held = undefined;
      if (previous) controller.enqueue(previous);
      this.#held = await this.#readChunkData(header);
      if (previous) return undefined;
    }
  }

  async #readChunkHeader(): Promise<ChunkHeader> {
    const line = await this.#source.readLine(MAX_CHUNK_HEADER_BYTES, "chunk header");
    const semicolon = line.indexOf(";");
    const sizeText = semicolon === -1 ? line : line.slice(0, semicolon);
    if (!SIZE_RE.test(sizeText)) throw framingError(`invalid chunk size: ${JSON.stringify(sizeText.slice(0, 40))}`);
    const sizeBytes = Number.parseInt(sizeText, 16);

    let signature: string | undefined;
    if (semicolon !== -1) {
      const extension = line.slice(semicolon + 1);
      if (!extension.startsWith("chunk-signature=")) throw framingError("invalid chunk extension");
      if (!this.#options.signed) throw new S3Error("InvalidRequest", "chunk signature in an unsigned payload");
      signature = extension.slice("chunk-signature=".length);
      if (!SIGNATURE_RE.test(signature)) throw new S3Error("SignatureDoesNotMatch", "malformed chunk signature");
    } else if (this.#options.signed) {
      throw new S3Error("SignatureDoesNotMatch", "missing chunk signature");
    }

    if (sizeBytes > this.#maxChunkBytes) {
      throw new S3Error("InvalidRequest", `chunk too large: ${sizeBytes} bytes (limit ${this.#maxChunkBytes})`);
    }
    const declared = this.#options.decodedContentLength;
    if (declared !== undefined && this.#totalBytes + sizeBytes > declared) {
      throw framingError(`body longer than x-amz-decoded-content-length ${declared}`);
    }
    return { sizeBytes, signature };
  }

  async #readChunkData(header: ChunkHeader): Promise<Uint8Array> {
    const data = await this.#source.readExact(header.sizeBytes, "chunk data");
    await this.#source.expectCrlf("chunk data");
    await this.#verifyChunk(header, data);
    this.#totalBytes += data.length;
    return data;
  }

  async #verifyChunk(header: ChunkHeader, data: Uint8Array): Promise<void> {
    if (!this.#options.signed) return;
    if (header.signature === undefined || !this.#options.verifier) {
      throw new S3Error("SignatureDoesNotMatch", "missing chunk signature");
    }
    if (!(await this.#options.verifier.verifyChunk(header.signature, data))) {
      throw new S3Error("SignatureDoesNotMatch", "chunk signature does not match");
    }
  }

  /** Final chunk: its signature, the trailer section, the end of the body, the length. */
  async #finish(finalHeader: ChunkHeader): Promise<Record<string, string>> {
    await this.#verifyChunk(finalHeader, new Uint8Array(0));
    const trailers = await this.#readTrailers();
    if (!(await this.#source.atEnd())) throw framingError("unexpected bytes after the final chunk");
    const declared = this.#options.decodedContentLength;
    if (declared !== undefined && this.#totalBytes !== declared) {
      throw framingError(`body of ${this.#totalBytes} bytes, x-amz-decoded-content-length ${declared}`);
    }
    return trailers;
  }

  /** Trailer lines up to the empty line; checks them against x-amz-trailer and verifies. */
  async #readTrailers(): Promise<Record<string, string>> {
    const { trailerNames, trailerSigned, verifier } = this.#options;
    const trailers = new Map<string, string>();
    let canonical = "";
    let signature: string | undefined;
    let sectionBytes = 0;
    for (;;) {
      const line = await this.#source.readLine(MAX_TRAILER_LINE_BYTES, "trailer");
      if (line === "") break;
      sectionBytes += line.length + 2;
      if (sectionBytes > MAX_TRAILER_SECTION_BYTES) throw trailerError("trailer section too large");
      if (signature !== undefined) throw trailerError("trailer after x-amz-trailer-signature");
      const colon = line.indexOf(":");
      const name = colon === -1 ? "" : line.slice(0, colon).trim().toLowerCase();
      if (!TRAILER_NAME_RE.test(name)) throw trailerError(`malformed trailer line: ${JSON.stringify(line.slice(0, 80))}`);
      const value = line.slice(colon + 1).trim();
      if (!TRAILER_VALUE_RE.test(value)) throw trailerError(`malformed trailer value: ${name}`);
      if (name === TRAILER_SIGNATURE_NAME) {
        if (!trailerSigned) throw trailerError("undeclared trailer: x-amz-trailer-signature");
        if (!SIGNATURE_RE.test(value)) throw new S3Error("SignatureDoesNotMatch", "malformed trailer signature");
        signature = value;
        continue;
      }
      if (!trailerNames.includes(name)) throw trailerError(`undeclared trailer: ${name}`);
      if (trailers.has(name)) throw trailerError(`duplicate trailer: ${name}`);
      trailers.set(name, value);
      canonical += `${name}:${value}\n`;
    }
    for (const name of trailerNames) {
      if (!trailers.has(name)) throw trailerError(`missing trailer: ${name}`);
    }
    if (trailerSigned) {
      if (signature === undefined || !verifier) throw new S3Error("SignatureDoesNotMatch", "missing trailer signature");
      if (!(await verifier.verifyTrailer(signature, canonical))) {
        throw new S3Error("SignatureDoesNotMatch", "trailer signature does not match");
      }
    }
    // fromEntries defines own properties, so even a "__proto__" trailer stays plain data.
    return Object.fromEntries(trailers);
  }
}

/**
 * Decodes an aws-chunked body. Throws TypeError at once for contradictory options (a
 * programming error); every problem with the body itself surfaces as an S3Error on both
 * the returned body and `trailers`. `trailers` excludes x-amz-trailer-signature.
 */
export function decodeAwsChunked(
  body: ReadableStream<Uint8Array>,
  options: AwsChunkedOptions,
): { body: ReadableStream<Uint8Array>; trailers: Promise<Record<string, string>> } {
  if ((options.signed || options.trailerSigned) && !options.verifier) {
    throw new TypeError("decodeAwsChunked: a signed payload needs a verifier");
  }
  if (options.trailerSigned && !options.signed) {
    throw new TypeError("decodeAwsChunked: a trailer signature chains from signed chunks");
  }
  const declared = options.decodedContentLength;
  if (declared !== undefined && !(Number.isSafeInteger(declared) && declared >= 0)) {
    throw new TypeError(`decodeAwsChunked: invalid decodedContentLength ${declared}`);
  }
  if (options.trailerNames.some((name) => name !== name.toLowerCase())) {
    throw new TypeError("decodeAwsChunked: trailerNames must be lower-cased");
  }

  let resolveTrailers: (trailers: Record<string, string>) => void = () => undefined;
  let rejectTrailers: (reason: unknown) => void = () => undefined;
  const trailers = new Promise<Record<string, string>>((resolve, reject) => {
    resolveTrailers = resolve;
    rejectTrailers = reject;
  });
  // A caller that only reads the body learns of failures there; without this, the same
  // failure would also surface as an unhandled rejection (fatal in Node by default).
  void trailers.catch(() => undefined);

  const source = new ByteSource(body.getReader());
  const decoder = new Decoder(source, options);
  const output = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const finished = await decoder.pull(controller);
          if (finished) {
            resolveTrailers(finished);
            controller.close();
          }
        } catch (error) {
          controller.error(error);
          rejectTrailers(error);
          await source.cancel(error);
        }
      },
      async cancel(reason) {
        rejectTrailers(new S3Error("IncompleteBody", "request body cancelled", { cause: reason }));
        await source.cancel(reason);
      },
    },
    // Pull only when the consumer reads: keeps at most one chunk buffered here.
    { highWaterMark: 0 },
  );
  return { body: output, trailers };
}
