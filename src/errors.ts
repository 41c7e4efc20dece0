/**
 * Typed errors with stable codes. The codes are part of the public contract: they appear in logs,
 * in gRPC status messages and in the README's troubleshooting table. Add codes, never rename them.
 */
export const ErrorCode = {
  Config: 'MC_ERR_CONFIG',
  InvalidChunk: 'MC_ERR_INVALID_CHUNK',
  SpoolFull: 'MC_ERR_SPOOL_FULL',
  SpoolCorrupt: 'MC_ERR_SPOOL_CORRUPT',
  SpoolClosed: 'MC_ERR_SPOOL_CLOSED',
  SpoolLocked: 'MC_ERR_SPOOL_LOCKED',
  EmitFailed: 'MC_ERR_EMIT_FAILED',
  EmitRejected: 'MC_ERR_EMIT_REJECTED',
  NotConnected: 'MC_ERR_NOT_CONNECTED',
  BackPressure: 'MC_ERR_BACK_PRESSURE',
  Checkpoint: 'MC_ERR_CHECKPOINT',
  Notify: 'MC_ERR_NOTIFY',
  ShuttingDown: 'MC_ERR_SHUTTING_DOWN',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class McError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'McError';
    this.code = code;
  }
}

/** A configuration problem; `message` is one line that names the variable (or flag) at fault. */
export class ConfigError extends McError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(ErrorCode.Config, `invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
