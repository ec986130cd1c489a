// SOURCE and DEST arguments: gs://bucket/prefix, s3://bucket/prefix, file:///dir.
// A prefix is always a folder: "" (the whole bucket) or a string ending in "/", so
// gs://b/robots and gs://b/robots/ mean the same and never match "robotsX".
import { ConfigError } from "./errors.ts";
import { RESERVED_PREFIX } from "../../s3/manifest.ts";

export type Location =
  | { scheme: "gs" | "s3"; bucket: string; prefix: string; url: string }
  | { scheme: "file"; dir: string; url: string };

export type BucketLocation = Extract<Location, { scheme: "gs" | "s3" }>;

const BUCKET_RE: Record<"gs" | "s3", RegExp> = {
  // GCS: 3-63 (222 with dots) of lower-case letters, digits, -, _ and .
  gs: /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/,
  s3: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
};

/** "" stays ""; anything else gains a trailing "/"; leading slashes are dropped. */
export function folderPrefix(path: string): string {
  const trimmed = path.replace(/^\/+/, "");
  if (trimmed === "") return "";
  return trimmed.endsWith("/") ? trimmed : `${trimmed}/`;
}

export function parseLocation(text: string, role: "SOURCE" | "DEST"): Location {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/s.exec(text);
  const allowed = role === "SOURCE" ? "gs://BUCKET/PREFIX, s3://BUCKET/PREFIX or file:///DIR" : "s3://BUCKET/PREFIX";
  if (!m) throw new ConfigError(role, `${role} must be a URL like ${allowed}, got "${text}"`);
  const scheme = (m[1] ?? "").toLowerCase();
  const rest = m[2] ?? "";
  if (scheme === "file" && role === "SOURCE") {
    if (!rest.startsWith("/")) throw new ConfigError(role, `${role} file:// URLs need an absolute path (file:///data/set), got "${text}"`);
    let dir: string;
    try {
      dir = decodeURIComponent(rest).replace(/\/+$/, "") || "/";
    } catch {
      throw new ConfigError(role, `${role} is not a valid file:// URL: "${text}"`);
    }
    return { scheme: "file", dir, url: `file://${dir}` };
  }
  if (scheme !== "gs" && scheme !== "s3") throw new ConfigError(role, `${role} has an unknown scheme "${scheme}://": use ${allowed}`);
  if (role === "DEST" && scheme !== "s3") throw new ConfigError(role, `DEST must be ${allowed} (R2 through the edge or --endpoint), got "${text}"`);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (bucket === "") throw new ConfigError(role, `${role} names no bucket: "${text}" (use ${allowed})`);
  if (!BUCKET_RE[scheme].test(bucket)) throw new ConfigError(role, `${role} bucket "${bucket}" is not a valid ${scheme === "gs" ? "GCS" : "S3"} bucket name`);
  const prefix = folderPrefix(slash < 0 ? "" : rest.slice(slash + 1));
  if (role === "DEST" && prefix.startsWith(RESERVED_PREFIX)) throw new ConfigError(role, `DEST may not be under the reserved "${RESERVED_PREFIX}" key space`);
  return { scheme, bucket, prefix, url: `${scheme}://${bucket}/${prefix}` };
}
