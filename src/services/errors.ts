/** Exit codes every command shares; gRPC failures of `tacos call` use 64 + status code. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
} as const;

export interface TacosErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  exitCode?: number;
  /** A stable machine-readable code (UPPER_SNAKE), for --json output and logs. */
  code?: string;
  /** The request field at fault, when there is one. */
  field?: string;
  cause?: unknown;
}

/** The one error type of tacos: a message for the user, a hint, and an exit code. */
export class TacosError extends Error {
  readonly hint?: string;
  readonly exitCode: number;
  readonly code: string;
  readonly field?: string;

  constructor(message: string, options: TacosErrorOptions = {}) {
    super(message, {cause: options.cause});
    this.name = 'TacosError';
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failure;
    this.code = options.code ?? 'FAILED';
    this.field = options.field;
  }
}

/** An error as every command prints it: the message, then what to do about it. */
export function errorText(error: TacosError): string {
  return `Error: ${error.message}\n${error.hint ? `Hint: ${error.hint}\n` : ''}`;
}

export function usageError(message: string, hint?: string): TacosError {
  return new TacosError(message, {hint, exitCode: ExitCode.usage, code: 'USAGE'});
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
