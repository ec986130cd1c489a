// S3 error codes and the one error class every S3 code path throws. Mapping to the
// wire form (S3 XML with a request id) happens only at the HTTP edge: see s3/xml.ts.

/** Every S3 error code Ferry answers with, and the HTTP status S3 gives it. */
export const s3ErrorStatus = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  ExpiredToken: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidObjectState: 403,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidURI: 400,
  InvalidRequest: 400,
  KeyTooLongError: 400,
  MalformedTrailerError: 400,
  MalformedXML: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  NotModified: 304,
  PreconditionFailed: 412,
  RequestHeaderSectionTooLarge: 400,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof s3ErrorStatus;

/** Extra fields S3 puts in the error document (e.g. Key, BucketName, RequestTime). */
export type S3ErrorDetails = Record<string, string | number | undefined>;

export class S3Error extends Error {
  override readonly name = "S3Error";
  readonly code: S3ErrorCode;
  readonly status: number;
  readonly details: S3ErrorDetails;

  constructor(code: S3ErrorCode, message: string, options: { details?: S3ErrorDetails; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = s3ErrorStatus[code];
    this.details = options.details ?? {};
  }
}

export function isS3Error(error: unknown): error is S3Error {
  return error instanceof S3Error;
}
