import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type StripeFake, startStripeFake } from './support/stripe-fake/index.ts';

// Pins the Stripe rules the fake implements, driving it with the real stripe-node client.

const JAN_1 = Date.UTC(2026, 0, 1) / 1000;
const FEB_1 = Date.UTC(2026, 1, 1) / 1000;
const MAR_1 = Date.UTC(2026, 2, 1) / 1000;
const HOUR = 3600;
const DAY = 86_400;

async function rejection(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (err) {
    return err as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

interface Billed {
  stripe: Stripe;
  meter: Stripe.Billing.Meter;
  price: Stripe.Price;
  customer: Stripe.Customer;
  subscription: Stripe.Subscription;
}

/** A customer on a monthly metered price (1.5 cents per unit, sum meter) from Jan 1. */
async function billedCustomer(fake: StripeFake, meterParams: Partial<Stripe.Billing.MeterCreateParams> = {}) {
  const stripe = fake.stripe();
  const eventName = `api_calls_${Math.random().toString(36).slice(2, 8)}`;
  const meter = await stripe.billing.meters.create({
    display_name: 'API calls',
    event_name: eventName,
    default_aggregation: { formula: 'sum' },
    ...meterParams,
  });
  const price = await stripe.prices.create({
    currency: 'usd',
    product_data: { name: 'API calls' },
    unit_amount_decimal: Stripe.Decimal.from('1.5'),
    recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
  });
  const customer = await stripe.customers.create({ name: 'Acme', metadata: { tenant: 'acme' } });
  const subscription = await stripe.subscriptions.create({
    customer: customer.id,
    items: [{ price: price.id }],
  });
  return { stripe, meter, price, customer, subscription } satisfies Billed;
}

function usage(b: Billed, value: string, timestamp: number, identifier?: string) {
  return b.stripe.billing.meterEvents.create({
    event_name: b.meter.event_name,
    payload: { stripe_customer_id: b.customer.id, value },
    timestamp,
    ...(identifier ? { identifier } : {}),
  });
}

/** A webhook receiver that answers with the queued statuses (then 200) and keeps raw bodies. */
async function receiver() {
  const received: Array<{ body: string; signature: string }> = [];
  const statuses: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['stripe-signature']),
      });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stripe/webhooks`;
  return { url, received, statuses, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('stripe fake', () => {
  let fake: StripeFake;

  beforeAll(async () => {
    fake = await startStripeFake({ startTime: JAN_1 });
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    fake.faults.clear();
    fake.rateLimits.configure({ enabled: false });
  });

  describe('authentication and permissions', () => {
    it('answers 401 for an unknown or revoked key', async () => {
      const unknown = await rejection(fake.stripe('sk_live_unknown').customers.list());
      expect(unknown).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect(unknown.statusCode).toBe(401);
      expect(unknown.message).toMatch(/^Invalid API Key provided: sk_live_\*+nown$/);
      fake.keys.revoke('sk_test_revoked_key');
      const revoked = await rejection(fake.stripe('sk_test_revoked_key').customers.list());
      expect(revoked).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    });

    it('refuses a restricted key outside its permission set with 403', async () => {
      fake.keys.add('rk_test_meterline', { permissions: { billing_meters: 'read', meter_events: 'write' } });
      const rk = fake.stripe('rk_test_meterline');
      await expect(rk.billing.meters.list({ limit: 1 })).resolves.toMatchObject({ object: 'list' });
      const err = await rejection(rk.customers.create({ name: 'x' }));
      expect(err).toBeInstanceOf(Stripe.errors.StripePermissionError);
      expect(err.statusCode).toBe(403);
      expect(err.message).toContain("'rak_customers_write' permission");
      const readOnly = await rejection(
        rk.billing.meters.create({
          display_name: 'x',
          event_name: 'x',
          default_aggregation: { formula: 'sum' },
        }),
      );
      expect(readOnly).toBeInstanceOf(Stripe.errors.StripePermissionError);
    });

    it('serves the account', async () => {
      const account = await fake.stripe().accounts.retrieveCurrent();
      expect(account.id).toMatch(/^acct_/);
      expect(account.object).toBe('account');
    });
  });

  describe('idempotency', () => {
    it('replays the stored response for the same key and parameters', async () => {
      const stripe = fake.stripe();
      const first = await stripe.customers.create({ name: 'Idem' }, { idempotencyKey: 'cust-1' });
      const again = await stripe.customers.create({ name: 'Idem' }, { idempotencyKey: 'cust-1' });
      expect(again.id).toBe(first.id);
      expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
      expect(fake.state.customers().filter((c) => c.name === 'Idem')).toHaveLength(1);
    });

    it('refuses the same key with other parameters (idempotency_error)', async () => {
      const stripe = fake.stripe();
      await stripe.customers.create({ name: 'A' }, { idempotencyKey: 'cust-2' });
      const err = await rejection(stripe.customers.create({ name: 'B' }, { idempotencyKey: 'cust-2' }));
      expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
      expect(err.statusCode).toBe(400);
      expect(err.message).toContain('can only be used with the same parameters');
    });

    it('does not keep refused requests, and keeps run requests that answered 5xx', async () => {
      const stripe = fake.stripe();
      fake.faults.failNext(1, { status: 503, match: { path: '/v1/customers' } });
      const lost = await rejection(stripe.customers.create({ name: 'Retry' }, { idempotencyKey: 'cust-3' }));
      expect(lost).toBeInstanceOf(Stripe.errors.StripeAPIError);
      const retried = await stripe.customers.create({ name: 'Retry' }, { idempotencyKey: 'cust-3' });
      expect(retried.lastResponse.headers['idempotent-replayed']).toBeUndefined();

      // Committed, but the client saw a 500: the retry under the same key gets the original result.
      fake.faults.failNext(1, { status: 500, afterExecute: true, match: { path: '/v1/customers' } });
      await rejection(stripe.customers.create({ name: 'Committed' }, { idempotencyKey: 'cust-4' }));
      const replay = await stripe.customers.create({ name: 'Committed' }, { idempotencyKey: 'cust-4' });
      expect(replay.lastResponse.headers['idempotent-replayed']).toBe('true');
      expect(fake.state.customers().filter((c) => c.name === 'Committed')).toHaveLength(1);
    });

    it('drops connections; stripe-node retries a closed connection once, under the same key', async () => {
      const stripe = fake.stripe();
      // The socket dies after the customer was created: stripe-node (even with maxNetworkRetries 0) retries
      // ECONNRESET once with the Idempotency-Key it put on the POST, and gets the stored result.
      fake.faults.dropConnections(1, {
        afterExecute: true,
        match: { method: 'POST', path: '/v1/customers' },
      });
      const created = await stripe.customers.create({ name: 'Dropped once' });
      expect(created.lastResponse.headers['idempotent-replayed']).toBe('true');
      expect(fake.state.customers().filter((c) => c.name === 'Dropped once')).toHaveLength(1);
      const log = fake.state
        .requests()
        .filter((r) => r.path === '/v1/customers' && r.method === 'POST')
        .slice(-2);
      expect(log.map((r) => r.status)).toEqual(['dropped', 200]);
      expect(log[0]?.idempotencyKey).toMatch(/^stripe-node-retry-/);
      expect(log[1]?.idempotencyKey).toBe(log[0]?.idempotencyKey);

      fake.faults.dropConnections(2, { match: { method: 'GET', path: '/v1/customers' } });
      const err = await rejection(stripe.customers.list());
      expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    });
    it('forgets keys after 24 h of fake time', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      try {
        const stripe = local.stripe();
        const first = await stripe.customers.create({ name: 'Day one' }, { idempotencyKey: 'daily' });
        await local.clock.advance(DAY);
        const second = await stripe.customers.create({ name: 'Day one' }, { idempotencyKey: 'daily' });
        expect(second.id).not.toBe(first.id);
      } finally {
        await local.close();
      }
    });

    it('slows responses past a client timeout while the call still happens', async () => {
      fake.faults.slow(400, { count: 1, match: { path: '/v1/customers' } });
      const impatient = fake.stripe(undefined, { timeout: 100 });
      const err = await rejection(impatient.customers.create({ name: 'Slow' }));
      expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
      expect(fake.state.customers().filter((c) => c.name === 'Slow')).toHaveLength(1);
    });
  });

  describe('errors and pagination', () => {
    it('uses Stripe error shapes', async () => {
      const stripe = fake.stripe();
      const missing = await rejection(stripe.customers.retrieve('cus_nope'));
      expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(missing).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'id' });
      const unknown = await rejection(
        stripe.customers.create({ nonsense: 'x' } as Stripe.CustomerCreateParams),
      );
      expect(unknown).toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'nonsense' });
    });

    it('expands ids and lists events', async () => {
      const b = await billedCustomer(fake);
      const sub = await b.stripe.subscriptions.retrieve(b.subscription.id, {
        expand: ['customer', 'latest_invoice'],
      });
      expect((sub.customer as Stripe.Customer).name).toBe('Acme');
      expect((sub.latest_invoice as Stripe.Invoice).billing_reason).toBe('subscription_create');
      const events = await b.stripe.events.list({
        type: 'customer.subscription.*' as 'customer.subscription.created',
      });
      expect(events.data.some((e) => (e.data.object as Stripe.Subscription).id === b.subscription.id)).toBe(
        true,
      );
    });

    it('pages with limit, starting_after and ending_before', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      try {
        const stripe = local.stripe();
        const created: string[] = [];
        for (let i = 0; i < 25; i++) created.push((await stripe.products.create({ name: `p${i}` })).id);
        const newest = [...created].reverse();
        const page1 = await stripe.products.list({ limit: 10 });
        expect(page1).toMatchObject({ object: 'list', has_more: true, url: '/v1/products' });
        expect(page1.data.map((p) => p.id)).toEqual(newest.slice(0, 10));
        const page3 = await stripe.products.list({ limit: 10, starting_after: newest[19] });
        expect(page3.data.map((p) => p.id)).toEqual(newest.slice(20));
        expect(page3.has_more).toBe(false);
        const before = await stripe.products.list({ limit: 5, ending_before: newest[10] });
        expect(before.data.map((p) => p.id)).toEqual(newest.slice(5, 10));
        expect(before.has_more).toBe(true);
        const all = await stripe.products.list({ limit: 7 }).autoPagingToArray({ limit: 100 });
        expect(all.map((p) => p.id)).toEqual(newest);
      } finally {
        await local.close();
      }
    });
  });

  describe('meter events', () => {
    it('refuses a reused identifier within 24 h with Stripe’s message, and accepts it after', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      try {
        const b = await billedCustomer(local);
        const now = local.clock.now();
        await usage(b, '3', now, 'evt-1');
        const err = await rejection(usage(b, '3', now, 'evt-1'));
        expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
        expect(err.statusCode).toBe(400);
        expect(err.message).toBe('An event already exists with identifier evt-1.');
        await local.clock.advance(DAY + 1);
        await expect(usage(b, '3', local.clock.now(), 'evt-1')).resolves.toMatchObject({
          identifier: 'evt-1',
        });
      } finally {
        await local.close();
      }
    });

    it('takes timestamps within the past 35 days and up to 5 minutes ahead', async () => {
      const b = await billedCustomer(fake);
      const now = fake.clock.now();
      await expect(usage(b, '1', now - 35 * DAY)).resolves.toBeTruthy();
      await expect(usage(b, '1', now + 300)).resolves.toBeTruthy();
      const old = await rejection(usage(b, '1', now - 35 * DAY - 1));
      expect(old.message).toBe(
        `The event timestamp cannot be more than 35 days in past. Expected a timestamp greater than or equal to ${now - 35 * DAY}.`,
      );
      expect(old.param).toBe('timestamp');
      const ahead = await rejection(usage(b, '1', now + 301));
      expect(ahead).toMatchObject({ statusCode: 400, param: 'timestamp' });
    });

    it('takes whole-number values, negatives included', async () => {
      const b = await billedCustomer(fake);
      const now = fake.clock.now();
      await expect(usage(b, '-4', now)).resolves.toBeTruthy();
      for (const bad of ['1.5', 'abc', '1e3', '']) {
        const err = await rejection(usage(b, bad, now));
        expect(err).toMatchObject({ statusCode: 400, param: 'payload[value]' });
      }
      const noCustomer = await rejection(
        b.stripe.billing.meterEvents.create({ event_name: b.meter.event_name, payload: { value: '1' } }),
      );
      expect(noCustomer).toMatchObject({ code: 'parameter_missing', param: 'payload[stripe_customer_id]' });
      // An unknown customer is accepted and reported asynchronously, never counted.
      await b.stripe.billing.meterEvents.create({
        event_name: b.meter.event_name,
        payload: { stripe_customer_id: 'cus_ghost', value: '1' },
        identifier: 'ghost-1',
      });
      expect(fake.state.meterErrorReports()).toContainEqual(
        expect.objectContaining({ code: 'meter_event_customer_not_found', identifier: 'ghost-1' }),
      );
    });

    it('takes decimal values when configured for newer API versions', async () => {
      const local = await startStripeFake({ startTime: JAN_1, meterEventValues: 'decimal' });
      try {
        const b = await billedCustomer(local);
        await usage(b, '1.25', JAN_1 + 60);
        await usage(b, '0.75', JAN_1 + 120);
        await usage(b, '2.5', JAN_1 + 180);
        expect((await rejection(usage(b, '1.0000000000000001', JAN_1 + 60))).statusCode).toBe(400);
        await local.clock.advanceTo(FEB_1);
        const renewal = local.state
          .invoices({ subscription: b.subscription.id })
          .find((i) => i.period_end === FEB_1);
        expect(renewal?.lines.data[0]).toMatchObject({ quantity_decimal: '4.5', amount: 7 });
      } finally {
        await local.close();
      }
    });

    it('keeps only the latest event per window with event_time_window', async () => {
      const b = await billedCustomer(fake, { event_time_window: 'hour' });
      const h = Math.floor(fake.clock.now() / HOUR) * HOUR - 2 * HOUR;
      await usage(b, '5', h + 60);
      await usage(b, '7', h + 120);
      await usage(b, '2', h + 600); // the latest in hour 1: replaces 5 and 7
      await usage(b, '4', h + HOUR + 5);
      const summaries = await b.stripe.billing.meters.listEventSummaries(b.meter.id, {
        customer: b.customer.id,
        start_time: h,
        end_time: h + 2 * HOUR,
      });
      expect(summaries.data).toHaveLength(1);
      expect(summaries.data[0]?.aggregated_value).toBe(6);
    });

    it('aggregates with count and last, and maps customer/value by the meter’s payload keys', async () => {
      const stripe = fake.stripe();
      const customer = await stripe.customers.create({ name: 'Keys' });
      const now = fake.clock.now();
      const count = await stripe.billing.meters.create({
        display_name: 'jobs',
        event_name: 'ci_jobs',
        default_aggregation: { formula: 'count' },
        customer_mapping: { event_payload_key: 'account', type: 'by_id' },
      });
      const last = await stripe.billing.meters.create({
        display_name: 'seats',
        event_name: 'seats',
        default_aggregation: { formula: 'last' },
        value_settings: { event_payload_key: 'seats' },
      });
      for (const v of ['10', '20', '30']) {
        await stripe.billing.meterEvents.create({
          event_name: 'ci_jobs',
          payload: { account: customer.id },
          timestamp: now - 100,
        });
        await stripe.billing.meterEvents.create({
          event_name: 'seats',
          payload: { stripe_customer_id: customer.id, seats: v },
          timestamp: now - 100 + Number(v),
        });
      }
      const start = Math.floor((now - 3600) / 60) * 60;
      const end = Math.floor(now / 60) * 60 + 60;
      const c = await stripe.billing.meters.listEventSummaries(count.id, {
        customer: customer.id,
        start_time: start,
        end_time: end,
      });
      const l = await stripe.billing.meters.listEventSummaries(last.id, {
        customer: customer.id,
        start_time: start,
        end_time: end,
      });
      expect(c.data[0]?.aggregated_value).toBe(3);
      expect(l.data[0]?.aggregated_value).toBe(30);
    });

    it('cancels an event by identifier within 24 h of receipt only', async () => {
      const local = await startStripeFake({ startTime: JAN_1 + 10 * DAY });
      try {
        const b = await billedCustomer(local);
        const t = local.clock.now() - 60;
        await usage(b, '10', t, 'keep');
        await usage(b, '5', t, 'drop');
        const adj = await b.stripe.billing.meterEventAdjustments.create({
          event_name: b.meter.event_name,
          type: 'cancel',
          cancel: { identifier: 'drop' },
        });
        expect(adj).toMatchObject({
          object: 'billing.meter_event_adjustment',
          type: 'cancel',
          status: 'pending',
        });
        expect(local.state.usage(b.meter.id, b.customer.id, t, t + 1)).toBe(10);
        await local.clock.advance(DAY + 1);
        const late = await rejection(
          b.stripe.billing.meterEventAdjustments.create({
            event_name: b.meter.event_name,
            type: 'cancel',
            cancel: { identifier: 'keep' },
          }),
        );
        expect(late).toMatchObject({ statusCode: 400, param: 'cancel[identifier]' });
        expect(late.message).toContain('within 24 hours');
      } finally {
        await local.close();
      }
    });

    it('summarizes over minute-aligned ranges, optionally per hour', async () => {
      const b = await billedCustomer(fake);
      const h = Math.floor(fake.clock.now() / HOUR) * HOUR - 3 * HOUR;
      await usage(b, '1', h + 10);
      await usage(b, '2', h + 20);
      await usage(b, '4', h + 2 * HOUR + 30);
      const hourly = await b.stripe.billing.meters.listEventSummaries(b.meter.id, {
        customer: b.customer.id,
        start_time: h,
        end_time: h + 3 * HOUR,
        value_grouping_window: 'hour',
      });
      expect(hourly.data.map((s) => [s.start_time - h, s.aggregated_value])).toEqual([
        [2 * HOUR, 4],
        [0, 3],
      ]);
      const unaligned = await rejection(
        b.stripe.billing.meters.listEventSummaries(b.meter.id, {
          customer: b.customer.id,
          start_time: h + 1,
          end_time: h + HOUR,
        }),
      );
      expect(unaligned).toMatchObject({ statusCode: 400, param: 'start_time' });
    });

    it('allows one concurrent call per customer per meter (lock_timeout)', async () => {
      const b = await billedCustomer(fake);
      const other = await b.stripe.customers.create({ name: 'Other' });
      fake.faults.meterEventLatency(150);
      const now = fake.clock.now();
      const [first, second, otherCustomer] = await Promise.allSettled([
        usage(b, '1', now),
        usage(b, '1', now),
        b.stripe.billing.meterEvents.create({
          event_name: b.meter.event_name,
          payload: { stripe_customer_id: other.id, value: '1' },
        }),
      ]);
      expect(first.status).toBe('fulfilled');
      expect(otherCustomer.status).toBe('fulfilled');
      expect(second.status).toBe('rejected');
      const err = (second as PromiseRejectedResult).reason as Stripe.errors.StripeError;
      expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
      expect(err.code).toBe('lock_timeout');
    });
  });

  describe('rate limits', () => {
    it('answers 429 past 25 reads/s in test mode and 100/s in live mode', async () => {
      fake.rateLimits.configure({ enabled: true, clock: 'fake' });
      fake.keys.add('sk_live_meterline', { mode: 'live' });
      const test = fake.stripe();
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, () => test.customers.list({ limit: 1 })),
      );
      const limited = results.filter((r) => r.status === 'rejected');
      expect(limited).toHaveLength(5);
      const err = (limited[0] as PromiseRejectedResult).reason as Stripe.errors.StripeError;
      expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
      expect(err).toMatchObject({ statusCode: 429, code: 'rate_limit' });
      const live = fake.stripe('sk_live_meterline');
      const liveResults = await Promise.allSettled(
        Array.from({ length: 30 }, () => live.customers.list({ limit: 1 })),
      );
      expect(liveResults.every((r) => r.status === 'fulfilled')).toBe(true);
      await fake.clock.advance(1);
      await expect(test.customers.list({ limit: 1 })).resolves.toBeTruthy();
    });

    it('counts test-mode meter events against the basic write limit, live ones apart', async () => {
      const b = await billedCustomer(fake);
      fake.keys.add('sk_live_meterline', { mode: 'live' });
      const live = fake.stripe('sk_live_meterline');
      fake.rateLimits.configure({ enabled: true, clock: 'fake' });
      const now = fake.clock.now();
      for (let i = 0; i < 25; i++) await usage(b, '1', now);
      expect(await rejection(b.stripe.customers.create({ name: 'over' }))).toBeInstanceOf(
        Stripe.errors.StripeRateLimitError,
      );
      for (let i = 0; i < 100; i++) await live.customers.create({ name: `live${i}` });
      await expect(
        live.billing.meterEvents.create({
          event_name: b.meter.event_name,
          payload: { stripe_customer_id: b.customer.id, value: '1' },
        }),
      ).resolves.toBeTruthy();
    });
  });

  describe('billing cycle', () => {
    it('drafts the renewal invoice at period end, counts grace-period usage, then freezes it', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      const hook = await receiver();
      try {
        const b = await billedCustomer(local);
        const endpoint = await b.stripe.webhookEndpoints.create({
          url: hook.url,
          enabled_events: ['invoice.created', 'invoice.finalized', 'customer.subscription.updated'],
        });
        const item = b.subscription.items.data[0] as Stripe.SubscriptionItem;
        expect([item.current_period_start, item.current_period_end]).toEqual([JAN_1, FEB_1]);
        await local.clock.advance(10 * DAY);
        await usage(b, '1000', JAN_1 + 5 * DAY);
        await usage(b, '-200', JAN_1 + 6 * DAY);
        await local.clock.advanceTo(FEB_1);
        await usage(b, '7', FEB_1); // February's: not on January's invoice

        const [draft] = local.state
          .invoices({ subscription: b.subscription.id })
          .filter((i) => i.billing_reason === 'subscription_cycle');
        expect(draft).toMatchObject({
          status: 'draft',
          period_start: JAN_1,
          period_end: FEB_1,
          automatically_finalizes_at: FEB_1 + HOUR,
        });
        expect(draft?.lines.data[0]).toMatchObject({
          quantity: 800,
          amount: 1200,
          period: { start: JAN_1, end: FEB_1 },
        });
        const rolled = await b.stripe.subscriptions.retrieve(b.subscription.id);
        expect(rolled.items.data[0]).toMatchObject({
          current_period_start: FEB_1,
          current_period_end: MAR_1,
        });

        // Reported during the grace hour, for January: it still counts.
        await local.clock.advance(30 * 60);
        await usage(b, '200', FEB_1 - 10);
        const refreshed = await b.stripe.invoices.retrieve(draft?.id as string);
        expect(refreshed.lines.data[0]?.quantity).toBe(1000);

        await local.clock.advance(30 * 60);
        const final = await b.stripe.invoices.retrieve(draft?.id as string);
        expect(final).toMatchObject({ status: 'open', total: 1500, amount_due: 1500 });
        expect(final.number).toMatch(/-0002$/);

        // After finalization, late usage for January changes nothing.
        await usage(b, '500', FEB_1 - 5);
        const frozen = await b.stripe.invoices.retrieve(draft?.id as string);
        expect(frozen.lines.data[0]?.quantity).toBe(1000);
        expect(frozen.total).toBe(1500);

        await local.webhooks.settled();
        const types = hook.received.map((r) => (JSON.parse(r.body) as Stripe.Event).type);
        expect(types).toEqual(['invoice.created', 'customer.subscription.updated', 'invoice.finalized']);
        const secret = local.webhooks.secret(endpoint.id) as string;
        expect(endpoint.secret).toBe(secret);
        for (const r of hook.received) {
          const event = b.stripe.webhooks.constructEvent(r.body, r.signature, secret, 300);
          expect(event.id).toMatch(/^evt_/);
        }
      } finally {
        await hook.close();
        await local.close();
      }
    });

    it('bills a negative cycle total as 0', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      try {
        const b = await billedCustomer(local);
        await local.clock.advance(DAY);
        await usage(b, '-50', JAN_1 + 60);
        await usage(b, '20', JAN_1 + 120);
        await local.clock.advanceTo(FEB_1 + HOUR);
        const invoice = local.state
          .invoices({ subscription: b.subscription.id })
          .find((i) => i.period_end === FEB_1);
        expect(invoice).toMatchObject({ status: 'paid', total: 0, amount_due: 0 });
        expect(invoice?.lines.data[0]?.quantity).toBe(0);
        expect(local.state.usage(b.meter.id, b.customer.id, JAN_1, FEB_1)).toBe(-30);
      } finally {
        await local.close();
      }
    });

    it('puts invoice items on the next invoice, and bills usage to date on a price change', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      try {
        const b = await billedCustomer(local);
        const adjustment = await b.stripe.invoiceItems.create({
          customer: b.customer.id,
          amount: 250,
          currency: 'usd',
          description: 'Under-billed December usage',
        });
        expect(adjustment.invoice).toBeNull();
        const dearer = await b.stripe.prices.create({
          currency: 'usd',
          product: b.price.product as string,
          unit_amount: 3,
          recurring: { interval: 'month', usage_type: 'metered', meter: b.meter.id },
        });
        await local.clock.advanceTo(JAN_1 + 10 * DAY);
        await usage(b, '100', JAN_1 + DAY);
        const item = b.subscription.items.data[0] as Stripe.SubscriptionItem;
        await b.stripe.subscriptions.update(b.subscription.id, {
          items: [{ id: item.id, price: dearer.id }],
        });
        await local.clock.advance(2 * DAY);
        await usage(b, '10', JAN_1 + 11 * DAY);
        await local.clock.advanceTo(FEB_1 + HOUR);
        const invoice = local.state
          .invoices({ subscription: b.subscription.id })
          .find((i) => i.period_end === FEB_1);
        const lines = local.state.invoiceLines(invoice?.id as string);
        const amounts = lines.map((l) => [l.description, l.amount]);
        expect(amounts).toContainEqual([`10 × API calls`, 30]);
        expect(amounts).toContainEqual(['Under-billed December usage', 250]);
        expect(amounts).toContainEqual(['Usage of API calls until the price change', 150]);
        expect(invoice).toMatchObject({ status: 'open', total: 430 });
        expect((await b.stripe.invoiceItems.retrieve(adjustment.id)).invoice).toBe(invoice?.id);
      } finally {
        await local.close();
      }
    });

    it('issues credit notes on finalized invoices only, up to what remains', async () => {
      const local = await startStripeFake({ startTime: JAN_1, invoiceGracePeriodSeconds: 2 * HOUR });
      try {
        const b = await billedCustomer(local);
        await local.clock.advance(DAY);
        await usage(b, '1000', JAN_1 + 60);
        await local.clock.advanceTo(FEB_1);
        const draft = local.state
          .invoices({ subscription: b.subscription.id })
          .find((i) => i.period_end === FEB_1);
        const onDraft = await rejection(
          b.stripe.creditNotes.create({ invoice: draft?.id as string, amount: 100 }),
        );
        expect(onDraft).toMatchObject({ statusCode: 400, param: 'invoice' });
        await local.clock.advance(2 * HOUR);
        const line = (await b.stripe.invoices.retrieve(draft?.id as string)).lines
          .data[0] as Stripe.InvoiceLineItem;
        const cn = await b.stripe.creditNotes.create({
          invoice: draft?.id as string,
          lines: [{ type: 'invoice_line_item', invoice_line_item: line.id, quantity: 100 }],
          reason: 'order_change',
        });
        expect(cn).toMatchObject({ amount: 150, type: 'pre_payment', status: 'issued' });
        expect(await b.stripe.invoices.retrieve(draft?.id as string)).toMatchObject({
          pre_payment_credit_notes_amount: 150,
          amount_due: 1350,
          amount_remaining: 1350,
        });
        const over = await rejection(
          b.stripe.creditNotes.create({ invoice: draft?.id as string, amount: 1351 }),
        );
        expect(over).toMatchObject({ statusCode: 400, param: 'amount' });
        await b.stripe.creditNotes.create({ invoice: draft?.id as string, amount: 1350 });
        expect((await b.stripe.invoices.retrieve(draft?.id as string)).status).toBe('paid');
      } finally {
        await local.close();
      }
    });

    it('cancels subscriptions and bills the unbilled usage with invoice_now', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      try {
        const b = await billedCustomer(local);
        await local.clock.advance(3 * DAY);
        await usage(b, '40', JAN_1 + DAY);
        const canceled = await b.stripe.subscriptions.cancel(b.subscription.id, { invoice_now: true });
        expect(canceled).toMatchObject({ status: 'canceled', ended_at: JAN_1 + 3 * DAY });
        const final = local.state
          .invoices({ subscription: b.subscription.id })
          .find((i) => i.id === canceled.latest_invoice);
        expect(final?.lines.data[0]).toMatchObject({ quantity: 40, amount: 60 });
        expect(local.state.events('customer.subscription.deleted')).toHaveLength(1);
        await local.clock.advanceTo(FEB_1 + HOUR);
        expect(local.state.invoices({ subscription: b.subscription.id })).toHaveLength(2);
      } finally {
        await local.close();
      }
    });
  });

  describe('webhooks', () => {
    it('retries a failing receiver on Stripe’s backoff in fake time', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      const hook = await receiver();
      try {
        const stripe = local.stripe();
        const endpoint = await stripe.webhookEndpoints.create({
          url: hook.url,
          enabled_events: ['customer.created'],
        });
        hook.statuses.push(500, 503);
        const customer = await stripe.customers.create({ name: 'Hooked' });
        await local.webhooks.settled();
        expect(hook.received).toHaveLength(1);
        await local.clock.advance(59);
        expect(hook.received).toHaveLength(1);
        await local.clock.advance(1);
        expect(hook.received).toHaveLength(2);
        await local.clock.advance(300);
        expect(hook.received).toHaveLength(3);
        const [delivery] = local.webhooks.deliveries();
        expect(delivery).toMatchObject({ state: 'succeeded', endpointId: endpoint.id });
        expect(delivery?.attempts.map((a) => a.status)).toEqual([500, 503, 200]);
        const event = stripe.webhooks.constructEvent(
          hook.received[2]?.body as string,
          hook.received[2]?.signature as string,
          endpoint.secret as string,
          300,
        );
        expect(event).toMatchObject({ type: 'customer.created', data: { object: { id: customer.id } } });
        expect(() =>
          stripe.webhooks.constructEvent(
            hook.received[2]?.body as string,
            hook.received[2]?.signature as string,
            'whsec_wrong',
          ),
        ).toThrow(Stripe.errors.StripeSignatureVerificationError);
      } finally {
        await hook.close();
        await local.close();
      }
    });

    it('drops, delays and duplicates deliveries on request', async () => {
      const local = await startStripeFake({ startTime: JAN_1 });
      const hook = await receiver();
      try {
        const stripe = local.stripe();
        await stripe.webhookEndpoints.create({ url: hook.url, enabled_events: ['*'] });
        local.faults.webhooks.delayNext(1, 120, { type: 'customer.created' });
        local.faults.webhooks.duplicateNext(1, { type: 'product.created' });
        local.faults.webhooks.dropNext(1, { type: 'price.created' });
        await stripe.customers.create({ name: 'late' });
        const product = await stripe.products.create({ name: 'twice' });
        await stripe.prices.create({ currency: 'usd', product: product.id, unit_amount: 5 });
        await local.webhooks.settled();
        const types = () => hook.received.map((r) => (JSON.parse(r.body) as Stripe.Event).type);
        expect(types()).toEqual(['product.created', 'product.created']);
        await local.clock.advance(120);
        expect(types()).toEqual(['product.created', 'product.created', 'price.created', 'customer.created']);
      } finally {
        await hook.close();
        await local.close();
      }
    });
  });
});
