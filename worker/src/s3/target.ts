// Where a path-style S3 request points: bucket and key, decoded. Keys that a POSIX view
// or a path-normalising client could never reach again are refused on write.
import { S3Error } from "../../../s3/errors.ts";

export interface Target {
  bucket: string;
  /** Decoded object key; "" for bucket-level requests. */
  key: string;
}

/** S3's limit on key length, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

export function parseTarget(url: URL): Target {
  const path = url.pathname;
  const slash = path.indexOf("/", 1);
  const rawBucket = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const rawKey = slash < 0 ? "" : path.slice(slash + 1);
  try {
    return { bucket: decodeURIComponent(rawBucket), key: decodeURIComponent(rawKey) };
  } catch (error) {
    throw new S3Error("InvalidURI", "Couldn't parse the specified URI.", { cause: error });
  }
}

/** Checks a key that is about to be written; throws KeyTooLongError or InvalidArgument. */
export function checkWritableKey(key: string): void {
  if (new TextEncoder().encode(key).length > MAX_KEY_BYTES) throw new S3Error("KeyTooLongError", "Your key is too long", { details: { MaxSizeAllowed: MAX_KEY_BYTES } });
  // Control characters break XML listings and file names; "." and ".." segments are
  // resolved away by URL parsers and cannot be addressed (or mounted) consistently.
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new S3Error("InvalidArgument", "Object keys must not contain control characters", { details: { ArgumentName: "key" } });
  if (key.split("/").some((segment) => segment === "." || segment === "..")) {
    throw new S3Error("InvalidArgument", "Object keys must not contain '.' or '..' path segments", { details: { ArgumentName: "key" } });
  }
}
