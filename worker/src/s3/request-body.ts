// An upload body on its way to R2, checked end to end: aws-chunked framing and chunk
// signatures, x-amz-content-sha256, Content-MD5 and x-amz-checksum-* (header or trailer).
// Invariant: R2 commits an object as soon as it has received the declared length, so
// the last piece of data is held back until every check has passed; a failed check
// errors the stream instead, and R2 stores nothing.
import { decodeAwsChunked } from "../../../s3/aws-chunked.ts";
import { fromBase64, toBase64, toHex } from "../../../s3/bytes.ts";
import {
  checksumAlgorithmFromHeader,
  checksumHeaderName,
  checksumLengthBytes,
  parseChecksumAlgorithm,
  type ChecksumAlgorithm,
} from "../../../s3/checksums.ts";
import { S3Error } from "../../../s3/errors.ts";
import { UNSIGNED_PAYLOAD } from "../../../s3/sigv4.ts";
import { createBodyDigest, type BodyDigest } from "./digest.ts";
import { chunkSignatureVerifier, type SignedRequest, type VerifiedSignature } from "../../../s3/sigv4-verify.ts";

export interface UploadBody {
  /** Exactly `length` bytes, or an error: suitable for R2 put/uploadPart. */
  stream: ReadableStream<Uint8Array>;
  length: number;
  /** The check that failed, once the stream has errored because of it. */
  failure(): S3Error | undefined;
  /** The checksum the client asked for, as base64, once the body is complete. */
  checksum(): { algorithm: ChecksumAlgorithm; value: string } | undefined;
}

const STREAMING = {
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": { signed: true, trailerSigned: false },
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": { signed: true, trailerSigned: true },
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER": { signed: false, trailerSigned: false },
} as const;

function parseLength(value: string | null, header: string): number {
  if (value === null) throw new S3Error("MissingContentLength", `You must provide the ${header} HTTP header.`);
  if (!/^\d{1,15}$/.test(value)) throw new S3Error("InvalidArgument", `${header} must be a whole number of bytes`, { details: { ArgumentName: header } });
  return Number(value);
}

function decodeDigest(value: string, bytes: number, onError: () => S3Error): Uint8Array {
  try {
    const digest = fromBase64(value.trim());
    if (digest.length !== bytes) throw onError();
    return digest;
  } catch (error) {
    if (error instanceof S3Error) throw error;
    throw onError();
  }
}

interface Expectation {
  algorithm?: ChecksumAlgorithm;
  /** base64 from a header; undefined when it comes in a trailer. */
  headerValue?: string;
  trailerName?: string;
}

function checksumExpectation(headers: Headers, trailerNames: string[]): Expectation {
  const fromHeaders = [...headers.keys()].filter((name) => name.startsWith("x-amz-checksum-") && name !== "x-amz-checksum-algorithm" && name !== "x-amz-checksum-type");
  const fromTrailers = trailerNames.filter((name) => name.startsWith("x-amz-checksum-"));
  const names = [...fromHeaders, ...fromTrailers];
  if (names.length > 1) throw new S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  const name = names[0];
  if (!name) {
    const declared = headers.get("x-amz-sdk-checksum-algorithm");
    if (declared && !parseChecksumAlgorithm(declared)) throw new S3Error("InvalidRequest", `Checksum algorithm ${declared} is not supported`);
    return {};
  }
  const algorithm = checksumAlgorithmFromHeader(name);
  if (!algorithm) throw new S3Error("InvalidRequest", `Checksum header ${name} is not supported`);
  if (fromHeaders.length) return { algorithm, headerValue: headers.get(name) ?? "" };
  return { algorithm, trailerName: name };
}

/** Opens and checks the body of a PutObject or UploadPart. */
export function openUploadBody(request: Request, signed: SignedRequest, verified: VerifiedSignature): UploadBody {
  const headers = request.headers;
  const payloadHash = signed.form === "presigned-v2" ? UNSIGNED_PAYLOAD : signed.payloadHash;
  let source = request.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  let length: number;
  let trailers: Promise<Record<string, string>> | undefined;
  let trailerNames: string[] = [];
  if (payloadHash.startsWith("STREAMING-")) {
    const mode = STREAMING[payloadHash as keyof typeof STREAMING];
    if (!mode) throw new S3Error("NotImplemented", `x-amz-content-sha256 ${payloadHash} is not supported`);
    length = parseLength(headers.get("x-amz-decoded-content-length"), "x-amz-decoded-content-length");
    trailerNames = (headers.get("x-amz-trailer") ?? "").split(",").map((n) => n.trim().toLowerCase()).filter(Boolean);
    const decoded = decodeAwsChunked(source, {
      signed: mode.signed,
      trailerNames,
      trailerSigned: mode.trailerSigned,
      decodedContentLength: length,
      ...(mode.signed ? { verifier: chunkSignatureVerifier(verified) } : {}),
    });
    source = decoded.body;
    trailers = decoded.trailers;
  } else {
    length = parseLength(headers.get("content-length"), "Content-Length");
    if (payloadHash !== UNSIGNED_PAYLOAD && !/^[0-9a-f]{64}$/.test(payloadHash)) {
      throw new S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a lower-case hex SHA-256", { details: { ArgumentName: "x-amz-content-sha256" } });
    }
  }

  const contentMd5 = headers.get("content-md5");
  const expectedMd5 = contentMd5 === null ? undefined : decodeDigest(contentMd5, 16, () => new S3Error("InvalidDigest", "The Content-MD5 you specified was invalid."));
  const expectation = checksumExpectation(headers, trailerNames);
  if (expectation.algorithm && expectation.headerValue !== undefined) {
    const alg = expectation.algorithm;
    decodeDigest(expectation.headerValue, checksumLengthBytes(alg), () => new S3Error("InvalidRequest", `Value for ${checksumHeaderName(alg)} header is invalid.`));
  }

  const md5 = expectedMd5 ? createBodyDigest("MD5") : undefined;
  const sha256 = /^[0-9a-f]{64}$/.test(payloadHash) ? createBodyDigest("SHA256") : undefined;
  const algorithmHasher: BodyDigest | undefined = expectation.algorithm ? createBodyDigest(expectation.algorithm) : undefined;
  let failure: S3Error | undefined;
  let computed: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  let seen = 0;
  let held: Uint8Array | undefined;

  const fail = (error: S3Error): S3Error => {
    failure ??= error;
    return failure;
  };

  async function finalChecks(): Promise<void> {
    if (seen !== length) throw fail(new S3Error("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header"));
    if (md5 && expectedMd5 && toBase64(await md5.digest()) !== toBase64(expectedMd5)) {
      throw fail(new S3Error("BadDigest", "The Content-MD5 you specified did not match what we received."));
    }
    if (sha256 && toHex(await sha256.digest()) !== payloadHash) {
      throw fail(new S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."));
    }
    if (algorithmHasher && expectation.algorithm) {
      const value = toBase64(await algorithmHasher.digest());
      let expected = expectation.headerValue;
      if (expected === undefined && expectation.trailerName) {
        const received = trailers ? await trailers : {};
        expected = received[expectation.trailerName];
        if (expected === undefined) throw fail(new S3Error("InvalidRequest", `The trailer ${expectation.trailerName} was declared but not sent`));
      }
      if (expected?.trim() !== value) {
        throw fail(new S3Error("BadDigest", `The ${expectation.algorithm} you specified did not match the calculated checksum.`));
      }
      computed = { algorithm: expectation.algorithm, value };
    }
  }

  const checked = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        seen += chunk.length;
        if (seen > length) throw fail(new S3Error("IncompleteBody", "The body is longer than the declared length"));
        await Promise.all([md5?.update(chunk), sha256?.update(chunk), algorithmHasher?.update(chunk)]);
        if (held) controller.enqueue(held);
        held = chunk;
      },
      async flush(controller) {
        await finalChecks();
        if (held) controller.enqueue(held);
      },
    }),
  );
  const fixed = new FixedLengthStream(length);
  // Errors from the decoder (framing, chunk signatures) are S3Errors too: remember them.
  checked.pipeTo(fixed.writable).catch((error: unknown) => {
    if (error instanceof S3Error) fail(error);
    else fail(new S3Error("IncompleteBody", "The request body ended early or could not be read", { cause: error }));
  });
  return {
    stream: fixed.readable,
    length,
    failure: () => failure,
    checksum: () => computed,
  };
}

/** Runs an R2 write fed by an upload body, reporting the body's own error when it failed. */
export async function writeFromBody<T>(body: UploadBody, write: (stream: ReadableStream<Uint8Array>) => Promise<T>): Promise<T> {
  try {
    return await write(body.stream);
  } catch (error) {
    // Give the pipe a turn to record why it failed before deciding what to report.
    await new Promise((resolve) => setTimeout(resolve, 0));
    throw body.failure() ?? error;
  }
}
