import {pino, type DestinationStream, type Logger} from 'pino';

export type {Logger};

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function lineOptions(level: string) {
  return {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {level: (label: string) => ({level: label})},
  };
}

/** JSON log lines on stdout (or the given destination), one per event, with the service name. */
export function createLogger(service: string, level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      ...lineOptions(level),
      base: {service},
      // Secrets never reach a log line, whatever the call site passes.
      redact: {paths: ['*.authorization', '*.password', '*.token', 'headers.authorization'], censor: '[redacted]'},
    },
    // Lines are written in batches (8 KiB, or every 250 ms): one write per request cost the gateway
    // about a fifth of its CPU under load. pino flushes what is left when the process exits.
    destination ?? pino.destination({sync: false, minLength: 8192, periodicFlush: 250}),
  );
}

const accessLoggers = new WeakMap<Logger, Logger>();

/**
 * The logger of the one line per request: the same stream, level and service, without redaction.
 * Its lines carry only fixed fields (ids, method, route, status, timing), never headers or bodies,
 * and redaction cost about as much as the rest of such a line.
 */
export function accessLogger(logger: Logger): Logger {
  let access = accessLoggers.get(logger);
  if (!access) {
    const stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
    access = pino({...lineOptions(logger.level), base: logger.bindings()}, stream);
    accessLoggers.set(logger, access);
  }
  return access;
}
