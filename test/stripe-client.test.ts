import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStripeClient, withStripeBackoff } from '../src/stripe/client.ts';
import { type StripeFake, startStripeFake } from './support/stripe-fake/index.ts';

let fake: StripeFake;
let stripe: Stripe;

beforeAll(async () => {
  fake = await startStripeFake();
  stripe = createStripeClient('sk_test_backoff', fake.url);
});
afterAll(() => fake.close());

describe('Stripe calls: our backoff for 429 and lock_timeout', () => {
  it('retries rate limits and lock timeouts with the same idempotency key, and succeeds', async () => {
    fake.faults.failNext(2, { status: 429, type: 'invalid_request_error', code: 'rate_limit' });
    fake.faults.failNext(1, { status: 429, type: 'invalid_request_error', code: 'lock_timeout' });
    const customer = await withStripeBackoff(
      () => stripe.customers.create({ name: 'Backoff' }, { idempotencyKey: 'meterline:test:backoff' }),
      6,
      5,
    );
    expect(customer.name).toBe('Backoff');
    const calls = fake.state.requests().filter((r) => r.idempotencyKey === 'meterline:test:backoff');
    expect(calls.length).toBe(4);
    expect(fake.state.customers().filter((c) => c.name === 'Backoff')).toHaveLength(1);
  });

  it('does not retry a permanent error, and gives up on a rate limit after the last attempt', async () => {
    let calls = 0;
    await expect(
      withStripeBackoff(
        () => {
          calls += 1;
          return stripe.customers.retrieve('cus_missing');
        },
        6,
        5,
      ),
    ).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(calls).toBe(1);

    fake.faults.failNext(3, { status: 429, type: 'invalid_request_error', code: 'rate_limit' });
    await expect(withStripeBackoff(() => stripe.customers.list({ limit: 1 }), 3, 5)).rejects.toBeInstanceOf(
      Stripe.errors.StripeRateLimitError,
    );
  });
});
