import type { StripeErrorBody } from './errors.ts';

/** Which requests a fault applies to; omitted fields match everything. */
export interface RequestMatch {
  method?: string;
  path?: string | RegExp;
}

export interface FailSpec {
  status: number;
  type?: StripeErrorBody['type'];
  code?: string;
  message?: string;
  match?: RequestMatch;
  /**
   * Run the request (state changes, idempotent result saved) and only then answer with the error: the
   * client sees a failure for a call that happened, and a retry under the same key gets the saved result.
   */
  afterExecute?: boolean;
  headers?: Record<string, string>;
}

export interface DropSpec {
  match?: RequestMatch;
  /** As for FailSpec: the request runs before the socket is destroyed. */
  afterExecute?: boolean;
}

export interface SlowSpec {
  match?: RequestMatch;
  /** How many requests to slow; unlimited when omitted. */
  count?: number;
}

export interface WebhookMatch {
  type?: string | RegExp;
}

interface Counted<T> {
  remaining: number;
  spec: T;
}

function matches(match: RequestMatch | undefined, method: string, path: string): boolean {
  if (!match) return true;
  if (match.method && match.method.toUpperCase() !== method) return false;
  if (match.path instanceof RegExp) return match.path.test(path);
  if (match.path !== undefined) return match.path === path;
  return true;
}

function matchesEvent(match: WebhookMatch | undefined, type: string): boolean {
  if (!match?.type) return true;
  return match.type instanceof RegExp ? match.type.test(type) : match.type === type;
}

function take<T extends { match?: RequestMatch }>(
  list: Counted<T>[],
  method: string,
  path: string,
): T | undefined {
  const found = list.find((f) => f.remaining > 0 && matches(f.spec.match, method, path));
  if (!found) return undefined;
  found.remaining -= 1;
  if (found.remaining === 0) list.splice(list.indexOf(found), 1);
  return found.spec;
}

function takeEvent<T extends { match?: WebhookMatch }>(list: Counted<T>[], type: string): T | undefined {
  const found = list.find((f) => f.remaining > 0 && matchesEvent(f.spec.match, type));
  if (!found) return undefined;
  found.remaining -= 1;
  if (found.remaining === 0) list.splice(list.indexOf(found), 1);
  return found.spec;
}

export class WebhookFaults {
  private readonly drops: Counted<{ match?: WebhookMatch }>[] = [];
  private readonly delays: Counted<{ match?: WebhookMatch; seconds: number }>[] = [];
  private readonly duplicates: Counted<{ match?: WebhookMatch }>[] = [];
  shuffled = false;

  /** The next n delivery attempts are lost: nothing is sent and Stripe counts the attempt as failed. */
  dropNext(n: number, match?: WebhookMatch): void {
    this.drops.push({ remaining: n, spec: { match } });
  }

  /** The next n events are first attempted `seconds` of fake time late. */
  delayNext(n: number, seconds: number, match?: WebhookMatch): void {
    this.delays.push({ remaining: n, spec: { match, seconds } });
  }

  /** The next n successful deliveries are sent a second time. */
  duplicateNext(n: number, match?: WebhookMatch): void {
    this.duplicates.push({ remaining: n, spec: { match } });
  }

  /** Deliveries that are due together go out in random order. */
  shuffle(on = true): void {
    this.shuffled = on;
  }

  clear(): void {
    this.drops.length = 0;
    this.delays.length = 0;
    this.duplicates.length = 0;
    this.shuffled = false;
  }

  takeDrop(type: string): boolean {
    return takeEvent(this.drops, type) !== undefined;
  }

  takeDelay(type: string): number {
    return takeEvent(this.delays, type)?.seconds ?? 0;
  }

  takeDuplicate(type: string): boolean {
    return takeEvent(this.duplicates, type) !== undefined;
  }
}

export class Faults {
  private readonly failures: Counted<FailSpec>[] = [];
  private readonly drops: Counted<DropSpec>[] = [];
  private readonly slows: Counted<SlowSpec & { ms: number }>[] = [];
  /** How long a meter-event call holds its customer+meter lock (to provoke lock_timeout). */
  meterEventHoldMs = 0;
  readonly webhooks = new WebhookFaults();

  /** The next n matching requests fail with `status` (500, 503, 429, …) in Stripe's error shape. */
  failNext(n: number, spec: FailSpec): void {
    this.failures.push({ remaining: n, spec });
  }

  /** Delays matching responses by `ms` of wall time; `slow(0)` removes every slowdown. */
  slow(ms: number, spec: SlowSpec = {}): void {
    if (ms <= 0) {
      this.slows.length = 0;
      return;
    }
    this.slows.push({ remaining: spec.count ?? Number.POSITIVE_INFINITY, spec: { ...spec, ms } });
  }

  /** The next n matching requests lose their connection (the socket is destroyed, no response). */
  dropConnections(n: number, spec: DropSpec = {}): void {
    this.drops.push({ remaining: n, spec });
  }

  meterEventLatency(ms: number): void {
    this.meterEventHoldMs = ms;
  }

  clear(): void {
    this.failures.length = 0;
    this.drops.length = 0;
    this.slows.length = 0;
    this.meterEventHoldMs = 0;
    this.webhooks.clear();
  }

  takeFailure(method: string, path: string): FailSpec | undefined {
    return take(this.failures, method, path);
  }

  takeDrop(method: string, path: string): DropSpec | undefined {
    return take(this.drops, method, path);
  }

  takeSlow(method: string, path: string): number {
    return take(this.slows, method, path)?.ms ?? 0;
  }
}
