import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullConnection } from '../jobs/connection.ts';
import { createJobs } from '../jobs/queues.ts';
import { stripeReconcileProcessor } from '../jobs/stripe-reconcile.ts';
import { startWorker } from '../jobs/worker.ts';
import { createLogger } from '../src/lib/logger.ts';
import { createMeterService } from '../src/meters/service.ts';
import { fromStripeCustomer, fromStripeSubscription } from '../src/stripe/mirror.ts';
import { createStripeService } from '../src/stripe/service.ts';
import { createSubjectStore } from '../src/subjects/store.ts';
import { buildTestApp, createTestEnv, eventually, TEST_ENCRYPTION_KEY, type TestEnv } from './support/env.ts';
import { freePort } from './support/process.ts';
import { type StripeFake, startStripeFake } from './support/stripe-fake/index.ts';

const API_KEY = 'rk_test_meterline_full_access_key_0001';
let env: TestEnv;
let fake: StripeFake;
let app: FastifyInstance;
let key: string;
let admin: Stripe;
let origin: string;
const logLines: string[] = [];
/** Stripe's time is the fake's: the mirror stamps its re-reads with it. */
const fakeClock = () => new Date(fake.clock.now() * 1000);

beforeAll(async () => {
  fake = await startStripeFake();
  admin = fake.stripe('sk_test_admin');
  env = await createTestEnv();
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  app = await buildTestApp(env, {
    logger,
    stripe: { apiBase: fake.url, publicUrl: origin, clock: fakeClock },
  });
  await app.listen({ port, host: '127.0.0.1' });
  key = (await env.keys.create('acme')).key;
});

afterAll(async () => {
  await app.close();
  await fake.close();
  await env.cleanup();
});

const api = (method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, body?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(body ? { payload: body as object } : {}),
  });

async function meteredSetup() {
  const meter = await admin.billing.meters.create({
    display_name: 'Tokens',
    event_name: 'tokens_total',
    default_aggregation: { formula: 'sum' },
  });
  const product = await admin.products.create({ name: 'AI' });
  const price = await admin.prices.create({
    product: product.id,
    currency: 'usd',
    unit_amount: 1,
    recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
  });
  const customer = await admin.customers.create({
    email: 'ops@acme.test',
    metadata: { meterline_subject: 'acme-1' },
  });
  const subscription = await admin.subscriptions.create({
    customer: customer.id,
    items: [{ price: price.id }],
  });
  return { meter, price, customer, subscription };
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The fake's current state as Meterline would mirror it. */
function expectedMirror() {
  return {
    customers: fake.state.customers().map(fromStripeCustomer).sort(byId),
    subscriptions: fake.state
      .subscriptions()
      .map(fromStripeSubscription)
      .map((s) => ({ ...s, items: [...s.items].sort(byId) }))
      .sort(byId),
  };
}

/** The service a worker process would build: same database, its own instance. */
function stripeService() {
  return createStripeService(
    {
      db: env.db,
      meters: createMeterService({ db: env.db, ch: env.ch }, { maxWindows: 10 }),
      subjects: createSubjectStore(env.db),
      logger: pino({ level: 'silent' }),
    },
    {
      apiBase: fake.url,
      subjectMetadataKey: 'meterline_subject',
      encryptionKey: TEST_ENCRYPTION_KEY,
      clock: fakeClock,
    },
  );
}

async function mirror() {
  const m = await stripeService().store.readMirror('acme');
  return { customers: m.customers, subscriptions: m.subscriptions };
}

describe('connecting a Stripe account', () => {
  it('refuses a key Stripe rejects, and a key missing permissions, naming what is missing', async () => {
    fake.keys.revoke('rk_test_revoked_key_0000');
    const rejected = await api('PUT', '/api/v1/stripe/connection', { apiKey: 'rk_test_revoked_key_0000' });
    expect(rejected.statusCode).toBe(400);
    expect(rejected.json()).toMatchObject({ code: 'ML_ERR_STRIPE_KEY_REJECTED' });

    fake.keys.add('rk_test_read_only_key_0001', {
      permissions: {
        account: 'read',
        customers: 'read',
        subscriptions: 'read',
        prices: 'read',
        billing_meters: 'read',
        invoices: 'read',
      },
    });
    const limited = await api('PUT', '/api/v1/stripe/connection', { apiKey: 'rk_test_read_only_key_0001' });
    expect(limited.statusCode, limited.body).toBe(400);
    expect(limited.json().code).toBe('ML_ERR_STRIPE_PERMISSIONS');
    expect(limited.json().detail).toMatch(
      /billing meter events: write.*credit notes: write.*invoice items: write.*webhook endpoints: write/,
    );
    expect((await api('GET', '/api/v1/stripe/connection')).statusCode).toBe(404);

    expect(
      (await api('PUT', '/api/v1/stripe/connection', { apiKey: 'pk_test_publishable' })).statusCode,
    ).toBe(400);
  });

  it('answers 502 and stores nothing when Stripe fails, also when only a permission probe fails', async () => {
    // stripe-node retries a 5xx twice: three failures exhaust it.
    fake.faults.failNext(3, { status: 500, type: 'api_error', match: { path: '/v1/account' } });
    const down = await api('PUT', '/api/v1/stripe/connection', { apiKey: API_KEY });
    expect(down.statusCode, down.body).toBe(502);
    expect(down.json().code).toBe('ML_ERR_STRIPE_UNAVAILABLE');

    // A probe that fails says nothing about the permission: not taken as granted.
    fake.faults.failNext(3, {
      status: 500,
      type: 'api_error',
      match: { method: 'GET', path: '/v1/invoices' },
    });
    const probeDown = await api('PUT', '/api/v1/stripe/connection', { apiKey: API_KEY });
    expect(probeDown.statusCode, probeDown.body).toBe(502);
    expect((await api('GET', '/api/v1/stripe/connection')).statusCode).toBe(404);
    expect((await admin.webhookEndpoints.list()).data).toEqual([]);
  });

  it('connects with a good key: webhook endpoint created, mirror backfilled, key shown as its last 4 only', async () => {
    const setup = await meteredSetup();
    const res = await api('PUT', '/api/v1/stripe/connection', { apiKey: API_KEY });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      livemode: false,
      apiKeyLast4: '0001',
      webhook: { managed: true, status: 'configured' },
      lastSyncAt: expect.any(String),
    });
    const endpoints = await admin.webhookEndpoints.list();
    expect(endpoints.data.map((e) => e.url)).toContain(`${origin}/api/v1/stripe/webhooks/acme`);
    expect(await mirror()).toEqual(expectedMirror());

    const mapping = (await api('GET', '/api/v1/stripe/mapping')).json();
    expect(mapping.customers).toContainEqual({
      customerId: setup.customer.id,
      subject: 'acme-1',
      subjectFrom: 'metadata',
    });
    // No Meterline meter feeds the Stripe meter yet: the mapping says so.
    expect(mapping.problems.join('\n')).toContain(`metered price ${setup.price.id}`);
    await api('POST', '/api/v1/meters', {
      slug: 'tokens_total',
      aggregation: 'SUM',
      eventType: 'ai',
      valueProperty: '$.tokens',
    });
    const linked = (await api('GET', '/api/v1/stripe/mapping')).json();
    expect(linked.meters).toContainEqual({
      meter: 'tokens_total',
      aggregation: 'SUM',
      stripeMeterId: setup.meter.id,
      linkedBy: 'event_name',
    });
    expect(linked.problems.join('\n')).not.toContain(`metered price ${setup.price.id}`);
  });
});

describe('meter mapping', () => {
  it('links a meter explicitly and reports an aggregation Stripe cannot take', async () => {
    const stripeMeter = (await admin.billing.meters.list()).data[0] as Stripe.Billing.Meter;
    await api('POST', '/api/v1/meters', {
      slug: 'peak_rps',
      aggregation: 'MAX',
      eventType: 'ai',
      valueProperty: '$.rps',
    });
    const res = await api('PUT', '/api/v1/stripe/mapping/peak_rps', { stripeMeterId: stripeMeter.id });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().meters).toContainEqual({
      meter: 'peak_rps',
      aggregation: 'MAX',
      stripeMeterId: stripeMeter.id,
      linkedBy: 'explicit',
    });
    expect(res.json().problems).toContain(
      `meter peak_rps (MAX) cannot feed Stripe meter ${stripeMeter.id} (formula sum)`,
    );
    expect(
      (await api('PUT', '/api/v1/stripe/mapping/no_such_meter', { stripeMeterId: stripeMeter.id }))
        .statusCode,
    ).toBe(404);
    await api('DELETE', '/api/v1/meters/peak_rps');
  });
});

describe('webhooks', () => {
  const endpointId = async () => (await admin.webhookEndpoints.list()).data[0]?.id ?? '';
  const deliver = (payload: string, signature: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/stripe/webhooks/acme',
      headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      payload,
    });
  const customerEvent = (id: string, name: string, created: number) =>
    JSON.stringify({
      id,
      object: 'event',
      type: 'customer.updated',
      created,
      api_version: fake.apiVersion,
      data: { object: { ...fake.state.customers()[0], name } },
    });

  it('applies a signed delivery once, however often it is delivered', async () => {
    const payload = customerEvent('evt_dup_1', 'Acme Once', fake.clock.now() + 10);
    const signature = fake.webhooks.sign(await endpointId(), payload);
    const first = await deliver(payload, signature);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({ received: true, outcome: 'applied' });
    expect((await deliver(payload, signature)).json()).toEqual({ received: true, outcome: 'duplicate' });
    expect((await mirror()).customers[0]?.name).toBe('Acme Once');
  });

  it('changes nothing on a forged, stale or unsigned delivery', async () => {
    const before = await mirror();
    const forged = customerEvent('evt_forged', 'Mallory', fake.clock.now() + 20);
    const bad = await deliver(forged, `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('ML_ERR_STRIPE_SIGNATURE');
    expect((await deliver(forged, '')).statusCode).toBe(400);

    // A correctly signed payload whose signature is older than 300 s is a replay.
    const stale = customerEvent('evt_stale', 'Old Mallory', fake.clock.now() + 30);
    const secret = fake.webhooks.secret(await endpointId()) ?? '';
    const old = admin.webhooks.generateTestHeaderString({
      payload: stale,
      secret,
      timestamp: Math.floor(Date.now() / 1000) - 301,
    });
    expect((await deliver(stale, old)).statusCode).toBe(400);
    expect(await mirror()).toEqual(before);
    expect(logLines.join('')).not.toContain('Mallory');
  });

  it('ends shuffled, duplicated subscription updates in the latest state', async () => {
    const subscription = fake.state.subscriptions()[0] as Stripe.Subscription;
    const base = fake.clock.now() + 100;
    const versions = [true, false, true, false, true].map((cancelAtPeriodEnd, i) => ({
      id: `evt_sub_${i}`,
      object: 'event',
      type: 'customer.subscription.updated',
      created: base + i,
      api_version: fake.apiVersion,
      data: {
        object: {
          ...subscription,
          cancel_at_period_end: cancelAtPeriodEnd,
          metadata: { version: String(i) },
        },
      },
    }));
    const order = [3, 0, 4, 4, 1, 2, 0];
    for (const i of order) {
      const payload = JSON.stringify(versions[i]);
      expect((await deliver(payload, fake.webhooks.sign(await endpointId(), payload))).statusCode).toBe(200);
    }
    const stored = (await mirror()).subscriptions.find((s) => s.id === subscription.id);
    expect(stored?.cancelAtPeriodEnd).toBe(true); // version 4, the newest
  });

  it('acknowledges events about objects it does not track', async () => {
    const payload = JSON.stringify({
      id: 'evt_product',
      object: 'event',
      type: 'product.updated',
      created: fake.clock.now(),
      data: { object: { id: 'prod_1', object: 'product' } },
    });
    const res = await deliver(payload, fake.webhooks.sign(await endpointId(), payload));
    expect(res.json()).toEqual({ received: true, outcome: 'ignored' });
  });
});

describe('reconcile', () => {
  it('after 100 random changes with 20% of webhooks dropped, the reconcile job makes the mirror equal to Stripe', async () => {
    // The hand-made deliveries above were dated up to 104 s ahead of the fake's clock; Stripe's own
    // events come after them.
    await fake.clock.advance(200);
    const customers = fake.state.customers();
    const prices = (await admin.prices.list({ limit: 100 })).data;
    let dropped = 0;
    for (let i = 0; i < 100; i++) {
      // Each change emits about one event; drop the next delivery one time in five.
      if (i % 5 === 2) {
        fake.faults.webhooks.dropNext(1);
        dropped += 1;
      }
      const roll = i % 4;
      if (roll === 0) {
        customers.push(
          await admin.customers.create({ name: `Customer ${i}`, metadata: { meterline_subject: `s-${i}` } }),
        );
      } else if (roll === 1) {
        const c = customers[i % customers.length] as Stripe.Customer;
        await admin.customers.update(c.id, { name: `Renamed ${i}` });
      } else if (roll === 2) {
        const c = customers[i % customers.length] as Stripe.Customer;
        await admin.subscriptions.create({
          customer: c.id,
          items: [{ price: (prices[0] as Stripe.Price).id }],
        });
      } else {
        const subs = fake.state.subscriptions().filter((s) => s.status !== 'canceled');
        const s = subs[i % subs.length];
        if (s) await admin.subscriptions.cancel(s.id);
      }
    }
    await fake.webhooks.settled();
    expect(dropped).toBe(20);
    // Missed webhooks leave the mirror behind Stripe...
    expect(await mirror()).not.toEqual(expectedMirror());

    // ...until the reconcile job runs, through BullMQ as the worker runs it. It runs a second later:
    // a re-read in the very second of the changes cannot tell whether it saw them.
    await fake.clock.advance(1);
    const connection = bullConnection(env.config.redis.url);
    const prefix = `${env.id}-jobs`;
    const silent = pino({ level: 'silent' });
    const jobs = createJobs(connection, silent, prefix);
    const worker = startWorker(
      connection,
      { 'stripe.reconcile': stripeReconcileProcessor(stripeService()) },
      silent,
      prefix,
    );
    const job = await jobs.add('stripe.reconcile', { namespace: 'acme' });
    await eventually(async () => (await job.getState()) === 'completed', 'reconcile job to complete');
    expect(await mirror()).toEqual(expectedMirror());

    await worker.close();
    await jobs.queue.obliterate({ force: true });
    await jobs.close();
  });
});

describe('the Stripe key', () => {
  it('appears in no log line, API response or PostgreSQL column in plain text', async () => {
    const responses = await Promise.all(
      ['/api/v1/stripe/connection', '/api/v1/stripe/mapping', '/api/v1/openapi.json'].map(
        async (url) => (await api('GET', url)).body,
      ),
    );
    responses.push((await api('PUT', '/api/v1/stripe/connection', { apiKey: API_KEY })).body);
    responses.push((await api('POST', '/api/v1/stripe/sync')).body);
    for (const body of responses) expect(body).not.toContain(API_KEY);
    const secret = fake.webhooks.secret((await admin.webhookEndpoints.list()).data[0]?.id ?? '') ?? '';
    expect(secret).toMatch(/^whsec_/);

    const logs = logLines.join('');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(API_KEY);
    expect(logs).not.toContain(secret);

    const { rows: tables } = await env.db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    for (const { table_name } of tables) {
      const { rows } = await env.db.query(`SELECT * FROM ${table_name}`);
      const text = JSON.stringify(rows);
      expect(text, table_name).not.toContain(API_KEY);
      expect(text, table_name).not.toContain(secret);
    }
  });

  it('disconnects: the endpoint is removed from Stripe and the mirror forgotten', async () => {
    expect((await api('DELETE', '/api/v1/stripe/connection')).statusCode).toBe(204);
    expect((await admin.webhookEndpoints.list()).data).toEqual([]);
    expect((await api('GET', '/api/v1/stripe/connection')).statusCode).toBe(404);
    expect((await mirror()).customers).toEqual([]);
  });
});
