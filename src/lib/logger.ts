import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * The process logger: JSON lines. Secrets are redacted by path as a second line of defence; the
 * first is that code never logs request bodies or Stripe keys.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'meterline' },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["stripe-signature"]',
          '*.apiKey',
          '*.webhookSecret',
          'apiKey',
          'webhookSecret',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
