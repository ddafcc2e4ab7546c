import { ClickHouseError } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse } from '../clickhouse/client.ts';
import { identifier, sql } from '../clickhouse/sql.ts';
import { loadConfig } from '../config.ts';
import { classifyFailure } from './failures.ts';

const config = loadConfig({});
const chError = (code: string) => new ClickHouseError({ message: 'x', code, type: 'X' });

describe('sink failure classification', () => {
  it('tells bad data from outages by ClickHouse code, in both message formats', () => {
    expect(classifyFailure(chError('25'))).toBe('data');
    expect(classifyFailure(chError('117'))).toBe('data');
    expect(classifyFailure(chError('252'))).toBe('outage'); // too many parts: overload, not data
    expect(classifyFailure(chError('60'))).toBe('outage'); // unknown table: not migrated
    expect(classifyFailure(chError('241'))).toBe('unknown'); // memory: a huge batch, or a busy server
    const old = new Error(
      'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected { before: x, e.what() = DB::Exception',
    );
    expect(classifyFailure(old)).toBe('data');
  });

  it('takes a row that cannot exist in memory for data, and socket errors for outages', () => {
    let tooLong: unknown;
    try {
      'x'.repeat(2 ** 30);
    } catch (err) {
      tooLong = err;
    }
    expect(classifyFailure(tooLong)).toBe('data');
    expect(classifyFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(
      'outage',
    );
    expect(classifyFailure(new Error('wrapped', { cause: chError('210') }))).toBe('outage');
    expect(classifyFailure(new Error('something else'))).toBe('unknown');
    expect(classifyFailure('a string')).toBe('unknown');
  });

  describe('against a real ClickHouse', () => {
    const database = `mlt_failures_${Date.now().toString(36)}`;
    const ch = createClickHouse(config.clickhouse, database);
    const closed = createClickHouse({ ...config.clickhouse, url: 'http://127.0.0.1:1' }, database);
    beforeAll(async () => {
      await ch.command(sql`CREATE DATABASE ${identifier(database)}`);
      await ch.command(sql`CREATE TABLE ${identifier(database)}.t (n UInt8, s String) ENGINE = Memory`);
    });
    afterAll(async () => {
      await ch.command(sql`DROP DATABASE IF EXISTS ${identifier(database)}`);
      await ch.close();
      await closed.close();
    });
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (err: unknown) => err,
      );

    it('classifies what the client really throws', async () => {
      expect(classifyFailure(await failure(closed.ping()))).toBe('outage');
      expect(classifyFailure(await failure(closed.insertLines('t', ['{"n":1}'])))).toBe('outage');
      expect(classifyFailure(await failure(ch.insertLines('no_such_table', ['{}'])))).toBe('outage');
      expect(classifyFailure(await failure(ch.insertLines('t', ['{"n":"abc"}'])))).toBe('data');
      expect(classifyFailure(await failure(ch.insertLines('t', ['{"s":"\\ud800"}'])))).toBe('data');
      // A truncated body (code 33) could be bad data or a cut connection: not certain either way.
      expect(classifyFailure(await failure(ch.insertLines('t', ['{"n":1'])))).toBe('unknown');
    });
  });
});
