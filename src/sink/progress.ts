import type { Redis } from 'ioredis';

/**
 * When a sink group last stored a batch, kept in Redis so that every process (the api's /readyz
 * as much as the sink's) can tell a sink that stalls with events waiting from one that is idle.
 */
export type SinkProgress = {
  record(at: number): Promise<void>;
  /** Milliseconds since the epoch, or null when no sink of the group has stored anything yet. */
  last(): Promise<number | null>;
};

export function createSinkProgress(redis: Redis, group: string): SinkProgress {
  const key = `meterline:sink:${group}:stored-at`;
  return {
    async record(at) {
      await redis.set(key, String(at));
    },
    async last() {
      const value = await redis.get(key);
      return value === null ? null : Number(value);
    },
  };
}
