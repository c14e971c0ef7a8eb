/** A small leveled logger: lines to a sink (stderr by default), plus `once` for problems found on every scan. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs a warning the first time `key` is seen, so a corrupt file is reported once, not on every rescan. */
  once(key: string, message: string): void;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function createLogger(
  level: LogLevel = 'info',
  sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  clock: () => Date = () => new Date(),
): Logger {
  const seen = new Set<string>();
  const write = (lvl: LogLevel, message: string) => {
    if (ORDER[lvl] >= ORDER[level]) sink(`${clock().toISOString()} ${lvl.toUpperCase()} ${message}`);
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    once: (key, m) => {
      if (seen.has(key)) return;
      seen.add(key);
      write('warn', m);
    },
  };
}

export const silentLogger: Logger = createLogger('error', () => undefined);
