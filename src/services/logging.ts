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
    // Not batched (sonic-boom's minLength): with a batch pending, a service whose stdout pipe broke
    // (tacos up killed) could stay alive instead of stopping.
    destination ?? pino.destination({sync: false}),
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
    const internals = logger as unknown as Record<symbol, unknown>;
    // Every binding, pid included (bindings() leaves pid and hostname out): `,"service":"gateway",...`.
    const chindings = String(internals[pino.symbols.chindingsSym] ?? '');
    const base = chindings ? (JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>) : {};
    access = pino({...lineOptions(logger.level), base}, internals[pino.symbols.streamSym] as DestinationStream);
    accessLoggers.set(logger, access);
  }
  return access;
}
