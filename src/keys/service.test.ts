import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../test/support/env.ts';
import { createKeyService } from './service.ts';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env.cleanup();
});

describe('API key cache', () => {
  it('keeps serving a known key from memory while unknown keys flood in', async () => {
    let queries = 0;
    // Counts PostgreSQL round trips of the real pool.
    const counted = new Proxy(env.db, {
      get(target, prop, receiver) {
        if (prop === 'query') {
          return (...args: unknown[]) => {
            queries += 1;
            return (target.query as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    // Frozen time: the flood takes longer than the known-key TTL, which this test is not about.
    const keys = createKeyService(counted, { now: () => 1_000_000 });
    const { key } = await keys.create('acme');
    expect(await keys.authenticate(key)).toBe('acme');
    // More unknown keys than the cache holds: it used to be cleared, known keys with it.
    for (let i = 0; i < 10_001; i++) expect(await keys.authenticate(`ml_not_a_key_${i}`)).toBeNull();
    const before = queries;
    expect(await keys.authenticate(key)).toBe('acme');
    expect(queries).toBe(before);
  });
});
