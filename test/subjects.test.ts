import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/env.ts';

const ctx = useTestApp();

function api(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, key = ctx.key) {
  return ctx.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

describe('subjects API', () => {
  it('upserts a batch, keeps fields left out, and reads by key or id', async () => {
    const first = await api('POST', '/api/v1/subjects', [
      { key: 'customer-1', displayName: 'Acme Corp', metadata: { tier: 'pro' }, stripeCustomerId: 'cus_123' },
      { key: 'customer-2' },
    ]);
    expect(first.statusCode, first.body).toBe(200);
    const [one, two] = first.json();
    expect(one).toMatchObject({
      key: 'customer-1',
      displayName: 'Acme Corp',
      metadata: { tier: 'pro' },
      stripeCustomerId: 'cus_123',
    });
    expect(two).toMatchObject({ key: 'customer-2', displayName: null, stripeCustomerId: null });

    const again = (
      await api('POST', '/api/v1/subjects', [{ key: 'customer-1', displayName: 'Acme Inc.' }])
    ).json();
    expect(again[0]).toMatchObject({
      id: one.id,
      displayName: 'Acme Inc.',
      stripeCustomerId: 'cus_123',
      metadata: { tier: 'pro' },
    });

    expect((await api('GET', '/api/v1/subjects/customer-1')).json().id).toBe(one.id);
    expect((await api('GET', `/api/v1/subjects/${one.id}`)).json().key).toBe('customer-1');
    expect((await api('GET', '/api/v1/subjects')).json().map((s: { key: string }) => s.key)).toEqual([
      'customer-1',
      'customer-2',
    ]);
  });

  it('deletes, answers 404 for unknown subjects, and refuses bad input', async () => {
    expect((await api('DELETE', '/api/v1/subjects/customer-2')).statusCode).toBe(204);
    expect((await api('GET', '/api/v1/subjects/customer-2')).statusCode).toBe(404);
    expect((await api('DELETE', '/api/v1/subjects/customer-2')).statusCode).toBe(404);
    const bad = await api('POST', '/api/v1/subjects', [{ displayName: 'no key' }]);
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json().errors)).toContain('key');
    expect((await api('POST', '/api/v1/subjects', { key: 'not-an-array' })).statusCode).toBe(400);
  });

  it('keeps subjects to their namespace', async () => {
    const other = (await ctx.env.keys.create('globex')).key;
    expect((await api('GET', '/api/v1/subjects', undefined, other)).json()).toEqual([]);
    expect((await api('GET', '/api/v1/subjects/customer-1', undefined, other)).statusCode).toBe(404);
    await api('POST', '/api/v1/subjects', [{ key: 'customer-1', displayName: 'Globex' }], other);
    expect((await api('GET', '/api/v1/subjects/customer-1')).json().displayName).toBe('Acme Inc.');
  });
});
