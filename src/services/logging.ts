import {pino, type Logger} from 'pino';

export type {Logger};

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** JSON log lines on stdout (or the given destination), one per event, with the service name. */
export function createLogger(service: string, level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: {service},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {level: (label) => ({level: label})},
      // Secrets never reach a log line, whatever the call site passes.
      redact: {paths: ['*.authorization', '*.password', '*.token', 'headers.authorization'], censor: '[redacted]'},
    },
    destination ?? pino.destination({sync: false}),
  );
}
