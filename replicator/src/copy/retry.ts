// Object-level retries: exponential backoff with full jitter, on errors that say another
// attempt may succeed (checksum mismatch, source changed, 429/5xx/network). The S3 SDK
// already retries single requests; this retries a whole object copy from a fresh read.
import { ReplicatorError } from "../errors.ts";
import { isTransient } from "../s3-client.ts";

export interface RetryOptions {
  attempts: number;
  /** First backoff ceiling. Default 500 ms. */
  baseDelayMs?: number;
  /** Largest backoff ceiling. Default 20 s. */
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each wait, with the attempt (1-based) that failed. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
}

export function isRetryable(error: unknown): boolean {
  if (error instanceof ReplicatorError) return error.retryable;
  if (error instanceof Error && error.name === "AbortError") return false;
  return isTransient(error);
}

export function backoffMs(attempt: number, options: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs" | "random">): number {
  const ceiling = Math.min(options.maxDelayMs ?? 20_000, (options.baseDelayMs ?? 500) * 2 ** (attempt - 1));
  return Math.round((options.random ?? Math.random)() * ceiling);
}

export async function withRetries<T>(attemptFn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptFn(attempt);
    } catch (error) {
      if (attempt >= options.attempts || !isRetryable(error) || options.signal?.aborted) throw error;
      const delayMs = backoffMs(attempt, options);
      options.onRetry?.(error, attempt, delayMs);
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
