import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type Stripe from 'stripe';
import type { WebhookFaults } from './faults.ts';
import { newId } from './ids.ts';
import type { Store } from './store.ts';

// Deliveries are real HTTP POSTs signed as Stripe signs them: `Stripe-Signature: t=<unix>,v1=<hex>` where
// v1 = HMAC-SHA256(endpoint secret, `${t}.${body}`). A non-2xx answer, a timeout or a lost attempt is
// retried on a backoff schedule in FAKE time: retries go out when clock.advance reaches them, so a test
// decides when Stripe "comes back". Due deliveries go out one at a time, oldest first (unless shuffled).

export interface WebhookSettings {
  /** Delay before each retry, in fake seconds; after the last one the delivery is abandoned. */
  retryScheduleSeconds: number[];
  /** Wall-time budget of one attempt. */
  timeoutMs: number;
  /** The `t=` of the signature: wall time (what a receiver checks its 300 s tolerance against) or fake time. */
  signatureClock: 'wall' | 'fake';
}

// Stripe retries for up to three days with growing gaps.
export const DEFAULT_RETRY_SCHEDULE = [60, 300, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400, 86_400];

export interface DeliveryAttempt {
  /** Fake time of the attempt. */
  at: number;
  status: number | null;
  error: string | null;
  duplicate: boolean;
}

export interface Delivery {
  id: string;
  eventId: string;
  eventType: string;
  endpointId: string;
  state: 'pending' | 'in_flight' | 'succeeded' | 'failed';
  nextAttemptAt: number;
  attempts: DeliveryAttempt[];
  seq: number;
}

export class WebhookDispatcher {
  readonly deliveries: Delivery[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  private seq = 0;
  private readonly controller = new AbortController();

  constructor(
    private readonly store: Store,
    private readonly faults: WebhookFaults,
    readonly settings: WebhookSettings,
  ) {
    store.onEvent((event) => this.enqueue(event));
  }

  private enqueue(event: Stripe.Event): void {
    for (const endpoint of this.store.webhookEndpoints.values()) {
      if (endpoint.status !== 'enabled') continue;
      if (!endpoint.enabled_events.includes('*') && !endpoint.enabled_events.includes(event.type)) continue;
      this.seq += 1;
      this.deliveries.push({
        id: newId('whdel', 16),
        eventId: event.id,
        eventType: event.type,
        endpointId: endpoint.id,
        state: 'pending',
        nextAttemptAt: this.store.now() + this.faults.takeDelay(event.type),
        attempts: [],
        seq: this.seq,
      });
    }
    // Delivery is asynchronous, as on Stripe: the API call that caused the event does not wait for it.
    setImmediate(() => {
      void this.pump();
    });
  }

  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const d of this.deliveries) {
      if (d.state === 'pending' && (next === undefined || d.nextAttemptAt < next)) next = d.nextAttemptAt;
    }
    return next;
  }

  private due(): Delivery[] {
    const now = this.store.now();
    return this.deliveries
      .filter((d) => d.state === 'pending' && d.nextAttemptAt <= now)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq);
  }

  pump(): Promise<void> {
    if (!this.running) {
      this.running = this.loop().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  /** Resolves once no delivery is in flight and none is due at the current fake time. */
  async settled(): Promise<void> {
    while (!this.closed && (this.running || this.due().length > 0)) await this.pump();
  }

  close(): void {
    this.closed = true;
    this.controller.abort();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const due = this.due();
      if (due.length === 0) return;
      const pick = this.faults.shuffled ? due[Math.floor(Math.random() * due.length)] : due[0];
      await this.attempt(pick as Delivery);
    }
  }

  private async attempt(d: Delivery): Promise<void> {
    const endpoint = this.store.webhookEndpoints.get(d.endpointId);
    const event = this.store.events.get(d.eventId);
    if (!endpoint || !event || endpoint.status !== 'enabled') {
      d.state = 'failed';
      return;
    }
    d.state = 'in_flight';
    if (this.faults.takeDrop(d.eventType)) {
      d.attempts.push({
        at: this.store.now(),
        status: null,
        error: 'dropped by fault injection',
        duplicate: false,
      });
      this.fail(d);
      return;
    }
    const result = await this.send(endpoint, event);
    d.attempts.push({ at: this.store.now(), ...result, duplicate: false });
    if (result.status !== null && result.status >= 200 && result.status < 300) {
      d.state = 'succeeded';
      event.pending_webhooks = Math.max(0, event.pending_webhooks - 1);
      if (this.faults.takeDuplicate(d.eventType)) {
        const again = await this.send(endpoint, event);
        d.attempts.push({ at: this.store.now(), ...again, duplicate: true });
      }
    } else {
      this.fail(d);
    }
  }

  private fail(d: Delivery): void {
    const delay = this.settings.retryScheduleSeconds[d.attempts.length - 1];
    if (delay === undefined) {
      d.state = 'failed';
      return;
    }
    d.state = 'pending';
    d.nextAttemptAt = this.store.now() + delay;
  }

  signatureHeader(payload: string, secret: string): string {
    const t = this.settings.signatureClock === 'wall' ? Math.floor(Date.now() / 1000) : this.store.now();
    const v1 = createHmac('sha256', secret).update(`${t}.${payload}`, 'utf8').digest('hex');
    return `t=${t},v1=${v1}`;
  }

  private send(
    endpoint: Stripe.WebhookEndpoint,
    event: Stripe.Event,
  ): Promise<{ status: number | null; error: string | null }> {
    const secret = this.store.webhookSecrets.get(endpoint.id) ?? '';
    // Stripe sends the event pretty-printed; receivers must verify the raw bytes, not a re-serialization.
    const payload = JSON.stringify(event, null, 2);
    const url = new URL(endpoint.url);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent: false,
          signal: this.controller.signal,
          timeout: this.settings.timeoutMs,
          headers: {
            'Content-Type': 'application/json; charset=utf-8',
            'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
            'Stripe-Signature': this.signatureHeader(payload, secret),
            'Content-Length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? null, error: null }));
          res.on('error', (err) => resolve({ status: res.statusCode ?? null, error: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.settings.timeoutMs} ms`)));
      req.on('error', (err) => resolve({ status: null, error: err.message }));
      req.end(payload);
    });
  }
}
