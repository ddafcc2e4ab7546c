import { describe, expect, it } from 'vitest';
import { bullConnection } from './connection.ts';

describe('bullConnection', () => {
  it('reads host, port, credentials, database and TLS from the URL', () => {
    expect(bullConnection('rediss://app:p%40ss@cache.internal:6380/2')).toEqual({
      host: 'cache.internal',
      port: 6380,
      username: 'app',
      password: 'p@ss',
      db: 2,
      tls: {},
      maxRetriesPerRequest: null,
    });
  });

  it('defaults to port 6379 and database 0', () => {
    expect(bullConnection('redis://127.0.0.1')).toEqual({
      host: '127.0.0.1',
      port: 6379,
      db: 0,
      maxRetriesPerRequest: null,
    });
  });
});
