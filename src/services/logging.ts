import {pino, type DestinationStream, type Logger} from 'pino';

export type {Logger};

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** JSON log lines on stdout (or the given destination), one per event, with the service name. */
export function createLogger(service: string, level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: {service},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {level: (label) => ({level: label})},
      // Secrets never reach a log line, whatever the call site passes.
      redact: {paths: ['*.authorization', '*.password', '*.token', 'headers.authorization'], censor: '[redacted]'},
    },
    // Not batched (sonic-boom's minLength): with a batch pending, a service whose stdout pipe broke
    // (tacos up killed) could stay alive instead of stopping.
    destination ?? pino.destination({sync: false}),
  );
}

/**
 * The logger of the one line per request: a child with the same stream, level and bindings, without
 * redaction. Its lines carry only fixed fields (ids, method, route, status, timing), never headers or
 * bodies, and redaction cost about as much as the rest of such a line.
 */
export function accessLogger(logger: Logger): Logger {
  return logger.child({}, {redact: []});
}
