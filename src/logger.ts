import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Where an API key could turn up in a log line: request headers (should a request, its headers or
 * an error carrying them be logged) and the config. pino replaces them with "[Redacted]".
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'config.API_KEYS',
  'API_KEYS',
];

export function createLogger(name: string, level: string, destination?: DestinationStream): Logger {
  return pino({ name, level, redact: REDACT_PATHS }, destination);
}
