// The CLI's one error type: a message for the user and the exit code to leave with.
// Anything thrown that is not a CliError is a bug and is printed with its stack.

export class CliError extends Error {
  override readonly name = "CliError";
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Usage errors exit with 2, like most Unix tools. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}
