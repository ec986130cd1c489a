// The replicator's errors: one small hierarchy. `retryable` says whether the same object
// may succeed on another attempt; input errors stop a run before anything is written.
// Callers branch on class, never on message text.

export class ReplicatorError extends Error {
  override readonly name: string = "ReplicatorError";
  readonly retryable: boolean;

  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** A flag or variable is missing or malformed; `flag` names it (e.g. "--shard"). */
export class ConfigError extends ReplicatorError {
  override readonly name = "ConfigError";
  readonly flag: string;

  constructor(flag: string, message: string) {
    super(message);
    this.flag = flag;
  }
}

/** The source or destination cannot be used as given (missing, forbidden, no credentials). */
export class InputError extends ReplicatorError {
  override readonly name = "InputError";
}

/** The bytes read do not match the source's checksum (or the destination refused them). */
export class ChecksumMismatchError extends ReplicatorError {
  override readonly name = "ChecksumMismatchError";
  readonly algorithm: string;
  readonly expected: string;
  readonly actual: string;

  constructor(subject: string, details: { algorithm: string; expected: string; actual: string }) {
    super(`checksum mismatch: ${subject}: ${details.algorithm} expected ${details.expected}, got ${details.actual}`, { retryable: true });
    this.algorithm = details.algorithm;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}

/** The source object changed or vanished while it was being read. */
export class SourceChangedError extends ReplicatorError {
  override readonly name = "SourceChangedError";

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { retryable: true, cause: options.cause });
  }
}

/** A read or write failed on the way; `retryable` per the status or network error. */
export class TransferError extends ReplicatorError {
  override readonly name = "TransferError";
}

/** The run was stopped (signal) before it finished. */
export class InterruptedError extends ReplicatorError {
  override readonly name = "InterruptedError";
}
