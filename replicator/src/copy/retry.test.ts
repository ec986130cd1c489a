// Object-level retries: only for errors that say so, with bounded jittered backoff.
import { describe, expect, it } from "vitest";
import { ChecksumMismatchError, InputError } from "../errors.ts";
import { backoffMs, isRetryable, withRetries } from "./retry.ts";

describe("retries", () => {
  it("retries a checksum mismatch and gives up after the last attempt", async () => {
    let calls = 0;
    const failing = withRetries(async () => {
      calls++;
      throw new ChecksumMismatchError("gs://b/k", { algorithm: "CRC32C", expected: "a", actual: "b" });
    }, { attempts: 3, baseDelayMs: 1 });
    await expect(failing).rejects.toThrow(/checksum mismatch: gs:\/\/b\/k: CRC32C expected a, got b/);
    expect(calls).toBe(3);
  });

  it("does not retry input errors, retries S3 throttling and 5xx", async () => {
    expect(isRetryable(new InputError("no"))).toBe(false);
    expect(isRetryable(Object.assign(new Error("slow down"), { name: "SlowDown", $metadata: { httpStatusCode: 429 } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("boom"), { $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("denied"), { $metadata: { httpStatusCode: 403 } }))).toBe(false);
    expect(isRetryable(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBe(true);
    let calls = 0;
    await expect(withRetries(async () => {
      calls++;
      throw new InputError("bad");
    }, { attempts: 5 })).rejects.toThrow(InputError);
    expect(calls).toBe(1);
  });

  it("backs off exponentially with full jitter, capped", () => {
    expect(backoffMs(1, { baseDelayMs: 100, random: () => 1 })).toBe(100);
    expect(backoffMs(4, { baseDelayMs: 100, random: () => 1 })).toBe(800);
    expect(backoffMs(30, { baseDelayMs: 100, maxDelayMs: 5000, random: () => 1 })).toBe(5000);
    expect(backoffMs(3, { random: () => 0 })).toBe(0);
  });
});
