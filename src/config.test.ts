import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('configuration', () => {
  it('has working defaults for one machine', () => {
    const config = loadConfig({});
    expect(config.http.port).toBe(8080);
    expect(config.eventLog).toMatchObject({ kind: 'redis', stream: 'meterline:events' });
    expect(config.clickhouse.url).toBe('http://127.0.0.1:8123');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads the Kafka settings when EVENT_LOG=kafka', () => {
    const config = loadConfig({ EVENT_LOG: 'kafka', KAFKA_BROKERS: 'a:9092, b:9092' });
    expect(config.eventLog).toMatchObject({
      kind: 'kafka',
      brokers: ['a:9092', 'b:9092'],
      topic: 'meterline-events',
    });
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: '99999',
        EVENT_LOG: 'kafka',
        SINK_BATCH_SIZE: 'many',
        CLICKHOUSE_DATABASE: 'x;drop',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'KAFKA_BROKERS', 'SINK_BATCH_SIZE', 'CLICKHOUSE_DATABASE']) {
      expect(message).toMatch(new RegExp(`^  ${name}: `, 'm'));
    }
  });

  it('refuses a Redis stream bound smaller than the largest request', () => {
    expect(() => loadConfig({ INGEST_MAX_BATCH_EVENTS: '5000', REDIS_STREAM_MAX_LENGTH: '1000' })).toThrow(
      /REDIS_STREAM_MAX_LENGTH: must be at least INGEST_MAX_BATCH_EVENTS \(5000\)/,
    );
  });

  it('reads the ingest limits, and refuses an event limit above the body limit', () => {
    expect(loadConfig({}).ingest).toMatchObject({
      maxEventBytes: 2 * 1024 * 1024,
      maxDataDepth: 32,
      maxDataLeaves: 10_000,
    });
    const config = loadConfig({
      INGEST_MAX_EVENT_BYTES: '1000',
      INGEST_MAX_DATA_DEPTH: '8',
      INGEST_MAX_DATA_LEAVES: '50',
    });
    expect(config.ingest).toMatchObject({ maxEventBytes: 1000, maxDataDepth: 8, maxDataLeaves: 50 });
    expect(() => loadConfig({ INGEST_MAX_BODY_BYTES: '1048576' })).toThrow(
      /INGEST_MAX_EVENT_BYTES: must not exceed INGEST_MAX_BODY_BYTES \(1048576\)/,
    );
    expect(() => loadConfig({ INGEST_MAX_DATA_DEPTH: '0' })).toThrow(/INGEST_MAX_DATA_DEPTH/);
  });

  it('refuses an unknown event log transport', () => {
    expect(() => loadConfig({ EVENT_LOG: 'rabbitmq' })).toThrow(/EVENT_LOG/);
  });
});
