import Stripe from 'stripe';
import { sleep } from '../lib/time.ts';

/** Pinned: webhook payloads and object shapes follow this version, whatever the account's default. */
export const STRIPE_API_VERSION = '2026-10-28.endive';

export type StripeClient = Stripe;

export function createStripeClient(apiKey: string, apiBase: string): Stripe {
  const base = new URL(apiBase);
  return new Stripe(apiKey, {
    apiVersion: STRIPE_API_VERSION,
    host: base.hostname,
    port: base.port ? Number(base.port) : base.protocol === 'http:' ? 80 : 443,
    protocol: base.protocol === 'http:' ? 'http' : 'https',
    // stripe-node retries connection errors, 409 and 5xx with the idempotency key we pass; 429 and
    // lock_timeout are ours to back off from (withStripeBackoff).
    maxNetworkRetries: 2,
    timeout: 30_000,
    telemetry: false,
  });
}

/** Rate limited or locked: Stripe says "later", not "no". */
export function isStripeBusy(err: unknown): boolean {
  if (!(err instanceof Stripe.errors.StripeError)) return false;
  return err.statusCode === 429 || err.code === 'lock_timeout' || err.code === 'rate_limit';
}

/** Retries a Stripe call that answered 429 or lock_timeout, with exponential backoff and jitter. */
export async function withStripeBackoff<T>(call: () => Promise<T>, attempts = 6, baseMs = 250): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isStripeBusy(err) || attempt >= attempts) throw err;
      await sleep(Math.min(baseMs * 2 ** (attempt - 1), 8_000) * (0.5 + Math.random() / 2));
    }
  }
}

export function isPermissionError(err: unknown): boolean {
  return (
    err instanceof Stripe.errors.StripePermissionError || (err as { statusCode?: number })?.statusCode === 403
  );
}

/** Stripe refuses the key itself (revoked, or its permissions removed): retrying cannot help. */
export function isKeyRefused(err: unknown): boolean {
  return (
    err instanceof Stripe.errors.StripeAuthenticationError ||
    err instanceof Stripe.errors.StripePermissionError
  );
}
