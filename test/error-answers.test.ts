import type { FastifyInstance } from 'fastify';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, createTestEnv, type TestEnv } from './support/env.ts';
import { freePort } from './support/process.ts';
import { type StripeFake, startStripeFake } from './support/stripe-fake/index.ts';

const API_KEY = 'rk_test_meterline_error_answers_0001';
const WEBHOOK_SECRET = 'whsec_error_answers_secret_0001';
let env: TestEnv;
let fake: StripeFake;
let app: FastifyInstance;
let key: string;
let admin: Stripe;

beforeAll(async () => {
  fake = await startStripeFake();
  admin = fake.stripe('sk_test_admin');
  env = await createTestEnv();
  app = await buildTestApp(env, { stripe: { apiBase: fake.url } });
  key = (await env.keys.create('acme')).key;
});

afterAll(async () => {
  await app.close();
  await fake.close();
  await env.cleanup();
});

const api = (target: FastifyInstance, method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown) =>
  target.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(body ? { payload: body as object } : {}),
  });

describe('a time zone ICU knows but ClickHouse cannot load', () => {
  it('is a 400 naming windowTimeZone, not a 500', async () => {
    const meter = await api(app, 'POST', '/api/v1/meters', {
      slug: 'calls',
      aggregation: 'COUNT',
      eventType: 'api-calls',
    });
    expect(meter.statusCode, meter.body).toBe(201);
    // Intl accepts SystemV/AST4 as its own canonical name; ClickHouse 18.16's tzdata has no such file.
    expect(Intl.DateTimeFormat(undefined, { timeZone: 'SystemV/AST4' }).resolvedOptions().timeZone).toBe(
      'SystemV/AST4',
    );
    for (const windowSize of ['DAY', 'HOUR', 'MONTH']) {
      const res = await api(
        app,
        'GET',
        `/api/v1/meters/calls/query?windowSize=${windowSize}&windowTimeZone=SystemV/AST4&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z`,
      );
      expect(res.statusCode, res.body).toBe(400);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.json().errors).toEqual([
        { field: 'windowTimeZone', message: 'time zone SystemV/AST4 is not available in ClickHouse' },
      ]);
    }
    const paris = await api(
      app,
      'GET',
      '/api/v1/meters/calls/query?windowSize=DAY&windowTimeZone=Europe/Paris&from=2026-01-01T00:00:00Z',
    );
    expect(paris.statusCode, paris.body).toBe(200);
  });
});

describe('the Stripe webhook route', () => {
  it('answers an unknown namespace exactly as a bad signature', async () => {
    const connected = await api(app, 'PUT', '/api/v1/stripe/connection', {
      apiKey: API_KEY,
      webhookSecret: WEBHOOK_SECRET,
    });
    expect(connected.statusCode, connected.body).toBe(200);
    const payload = JSON.stringify({ id: 'evt_probe', object: 'event', type: 'customer.updated' });
    const forged = admin.webhooks.generateTestHeaderString({ payload, secret: 'whsec_guessed' });
    const deliver = (namespace: string, signature: string) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/stripe/webhooks/${namespace}`,
        headers: { 'content-type': 'application/json', 'stripe-signature': signature },
        payload,
      });
    for (const signature of [forged, '', 'garbage']) {
      const known = await deliver('acme', signature);
      const unknown = await deliver('no-such-namespace', signature);
      expect(known.statusCode).toBe(400);
      expect(unknown.statusCode).toBe(known.statusCode);
      const withoutRequestId = (body: string) => body.replace(/urn:request:[0-9a-f-]+/, 'urn:request:-');
      expect(withoutRequestId(unknown.body)).toBe(withoutRequestId(known.body));
      const headers = (h: Record<string, unknown>) => {
        const { 'x-request-id': _, date: __, ...rest } = h;
        return rest;
      };
      expect(headers(unknown.headers)).toEqual(headers(known.headers));
    }
    // A genuine delivery still works, so the identical answers are not a broken route.
    const genuine = JSON.stringify({
      id: 'evt_ok',
      object: 'event',
      type: 'invoice.upcoming',
      created: Math.floor(Date.now() / 1000),
      api_version: fake.apiVersion,
      data: { object: { object: 'invoice', id: 'in_x' } },
    });
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/stripe/webhooks/acme',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': admin.webhooks.generateTestHeaderString({
          payload: genuine,
          secret: WEBHOOK_SECRET,
        }),
      },
      payload: genuine,
    });
    expect(ok.statusCode, ok.body).toBe(200);
  });
});

describe('POST /api/v1/stripe/sync with Stripe unreachable', () => {
  it('is a 502 with a retry hint, not a 500', async () => {
    // The same database and connection, but Stripe's address is a closed port.
    const closed = await freePort();
    const offline = await buildTestApp(env, { stripe: { apiBase: `http://127.0.0.1:${closed}` } });
    try {
      const res = await api(offline, 'POST', '/api/v1/stripe/sync');
      expect(res.statusCode, res.body).toBe(502);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.headers['retry-after']).toBe('5');
      expect(res.json()).toMatchObject({ code: 'ML_ERR_STRIPE_UNAVAILABLE', status: 502 });
      expect(res.json().detail).toMatch(/retry/);
    } finally {
      await offline.close();
    }
    // Reachable again: the same call succeeds.
    const ok = await api(app, 'POST', '/api/v1/stripe/sync');
    expect(ok.statusCode, ok.body).toBe(200);
  });
});
