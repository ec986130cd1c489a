// Configuration: locations, sizes and flags, each error naming what to fix.
import { describe, expect, it } from "vitest";
import { buildConfig, parseSize } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { parseLocation } from "./locations.ts";

const env = { FERRY_ACCESS_KEY_ID: "id", FERRY_SECRET_ACCESS_KEY: "secret" };

describe("locations", () => {
  it("normalises prefixes to folders", () => {
    expect(parseLocation("gs://bucket/robots", "SOURCE")).toEqual({ scheme: "gs", bucket: "bucket", prefix: "robots/", url: "gs://bucket/robots/" });
    expect(parseLocation("gs://bucket", "SOURCE")).toMatchObject({ prefix: "", url: "gs://bucket/" });
    expect(parseLocation("s3://datasets/a/b/", "DEST")).toMatchObject({ bucket: "datasets", prefix: "a/b/" });
    expect(parseLocation("file:///data/set/", "SOURCE")).toEqual({ scheme: "file", dir: "/data/set", url: "file:///data/set" });
  });

  it("refuses unknown schemes, missing buckets, relative files and the reserved space", () => {
    expect(() => parseLocation("ftp://x/y", "SOURCE")).toThrow(/unknown scheme "ftp:\/\/"/);
    expect(() => parseLocation("gs:///x", "SOURCE")).toThrow(/names no bucket/);
    expect(() => parseLocation("file://relative/dir", "SOURCE")).toThrow(/absolute path/);
    expect(() => parseLocation("gs://b/x", "DEST")).toThrow(/DEST must be/);
    expect(() => parseLocation("s3://datasets/.ferry/x", "DEST")).toThrow(/reserved/);
    expect(() => parseLocation("s3://Bad_Bucket/x", "DEST")).toThrow(/not a valid S3 bucket name/);
  });
});

describe("config", () => {
  it("has documented defaults and is frozen", () => {
    const config = buildConfig(["gs://bkt/p", "s3://datasets/p"], {}, env);
    expect(config).toMatchObject({ concurrency: 16, partSizeBytes: 16 * 1024 * 1024, attempts: 3, egressUsdPerGiB: 0.12, destVia: "edge", destEndpoint: "http://127.0.0.1:8787", shard: { index: 0, count: 1 } });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("names the flag in every error", () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ concurrency: "0" }, "--concurrency"],
      [{ "part-size": "1MiB" }, "--part-size"],
      [{ "part-size": "lots" }, "--part-size"],
      [{ schedule: "sometimes" }, "--schedule"],
      [{ shard: "1/1" }, "--shard"],
      [{ endpoint: "ftp://x" }, "--endpoint"],
      [{ "egress-price": "-1" }, "--egress-price"],
      [{ bwlimit: "10" }, "--bwlimit"],
    ];
    for (const [flags, flag] of cases) {
      try {
        buildConfig(["gs://bkt/p", "s3://datasets/p"], flags, env);
        throw new Error(`accepted ${JSON.stringify(flags)}`);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).flag).toBe(flag);
        expect((error as Error).message).toContain(flag);
      }
    }
    expect(() => buildConfig(["gs://bkt/p", "s3://datasets/p"], {}, {})).toThrow(/FERRY_ACCESS_KEY_ID/);
    // An s3:// source has its own key: the destination's is never reused for it.
    expect(() => buildConfig(["s3://src/p", "s3://datasets/p"], {}, env)).toThrow(/FERRY_SOURCE_ACCESS_KEY_ID/);
    expect(() => buildConfig(["s3://src/p", "s3://datasets/p"], {}, { ...env, AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b" })).not.toThrow();
  });

  it("parses sizes in binary and decimal units", () => {
    expect(parseSize("16MiB", "--x")).toBe(16 * 1024 * 1024);
    expect(parseSize("16M", "--x")).toBe(16 * 1024 * 1024);
    expect(parseSize("16MB", "--x")).toBe(16_000_000);
    expect(parseSize("1048576", "--x")).toBe(1048576);
    expect(() => parseSize("1 parsec", "--x")).toThrow(ConfigError);
  });
});
