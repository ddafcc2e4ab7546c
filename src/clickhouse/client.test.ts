import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { clickHouseErrorCode } from './client.ts';

describe('ClickHouse error classification', () => {
  it('reads the code from 18.16 messages and from current ones', () => {
    const old = new Error(
      'Code: 25, e.displayText() = DB::Exception: Cannot parse escape sequence: missing second part of surrogate pair, e.what() = DB::Exception',
    );
    expect(clickHouseErrorCode(old)).toBe('25');
    expect(clickHouseErrorCode(new ClickHouseError({ message: 'x', code: '27', type: 'CANNOT_PARSE' }))).toBe(
      '27',
    );
    expect(clickHouseErrorCode(new Error('connect ECONNREFUSED 127.0.0.1:8123'))).toBeUndefined();
  });
});
