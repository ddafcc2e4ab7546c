import type { KeyMode } from './auth.ts';

// Stripe's basic limiter: live 100 reads + 100 writes per second, test 25 + 25. v1 meter events have their
// own 1,000/s in live mode but count against the basic write limit in test mode.

export type RateClass = 'read' | 'write' | 'meter_events';

export interface ModeLimits {
  read: number;
  write: number;
  /** 'shared' counts meter events against `write`. */
  meterEvents: number | 'shared';
}

export interface RateLimitConfig {
  enabled: boolean;
  /** Refill tokens by wall time or by the fake clock (which only moves on advance in frozen mode). */
  clock: 'wall' | 'fake';
  live: ModeLimits;
  test: ModeLimits;
}

export const DEFAULT_RATE_LIMITS: RateLimitConfig = {
  enabled: false,
  clock: 'wall',
  live: { read: 100, write: 100, meterEvents: 1000 },
  test: { read: 25, write: 25, meterEvents: 'shared' },
};

interface Bucket {
  tokens: number;
  last: number;
}

export class RateLimiter {
  config: RateLimitConfig = structuredClone(DEFAULT_RATE_LIMITS);
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly fakeNowMs: () => number) {}

  configure(
    patch: Partial<Omit<RateLimitConfig, 'live' | 'test'>> & Partial<Record<KeyMode, Partial<ModeLimits>>>,
  ) {
    this.config = {
      enabled: patch.enabled ?? this.config.enabled,
      clock: patch.clock ?? this.config.clock,
      live: { ...this.config.live, ...patch.live },
      test: { ...this.config.test, ...patch.test },
    };
    this.buckets.clear();
  }

  /** Takes one token; false when the bucket is empty (the call gets a 429). */
  take(mode: KeyMode, cls: RateClass): boolean {
    if (!this.config.enabled) return true;
    const limits = this.config[mode];
    const effective: 'read' | 'write' | 'meter_events' =
      cls === 'meter_events' && limits.meterEvents === 'shared' ? 'write' : cls;
    const rate = effective === 'meter_events' ? (limits.meterEvents as number) : limits[effective];
    const now = this.config.clock === 'wall' ? Date.now() : this.fakeNowMs();
    const id = `${mode}:${effective}`;
    let bucket = this.buckets.get(id);
    if (!bucket) {
      bucket = { tokens: rate, last: now };
      this.buckets.set(id, bucket);
    }
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.last) / 1000) * rate);
    bucket.last = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
