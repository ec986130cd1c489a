// The one error the sample writers throw for I/O failures, kept apart from the writers so
// that callers can check for it without loading the HDF5 WebAssembly module.

/** Writing the dataset failed (disk full, no permission, ...); `path` is what failed. */
export class SampleWriteError extends Error {
  override readonly name = "SampleWriteError";
  readonly path: string;

  constructor(message: string, options: { path: string; cause: unknown }) {
    super(message, { cause: options.cause });
    this.path = options.path;
  }
}
