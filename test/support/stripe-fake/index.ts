// A stateful Stripe fake for the parts of Stripe Billing that Meterline uses, typed with stripe-node's types
// and driven in tests with the real stripe-node client (`fake.stripe()`).
//
// Time: a fake clock (frozen unless clockMode 'running'); `clock.advance()` steps through every moment at
// which something falls due (period ends, invoice finalizations, webhook retries) in order and waits for
// the webhooks it causes. Webhook retries and delayed deliveries are scheduled in fake time.
//
// Modelled: account; customers; products; prices (per-unit, metered by a meter, transform_quantity);
// billing meters (sum | count | last, payload-key mapping, event_time_window set semantics); v1 meter
// events (identifier uniqueness over 24 h, −35 d/+5 min timestamps, whole-number values, one concurrent
// call per customer+meter); cancel adjustments within 24 h; event summaries; subscriptions (billing_mode
// flexible, periods on items, price changes, cancel); renewal invoices (draft at period end, finalized after
// the grace period with the usage known then, negative totals billed as 0); invoice items; credit notes;
// webhook endpoints with signed deliveries and retries; events; Idempotency-Key; pagination; expand;
// restricted keys; rate limits per mode; fault injection.
//
// Not modelled: payments and refunds (invoices stay `open` unless autoPay or zero), taxes, discounts,
// tiered prices, prorations of licensed prices, trials, test clocks as an API, the v2 meter event stream,
// thin events (meter error reports are kept in state.meterErrorReports instead), invoice.upcoming, search.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { type KeyConfig, KeyRing } from './auth.ts';
import { Billing } from './billing.ts';
import { type ClockMode, FakeClock } from './clock.ts';
import { controlApi } from './control.ts';
import { Faults } from './faults.ts';
import { IdempotencyStore } from './idempotency.ts';
import { randomToken } from './ids.ts';
import { type ModeLimits, type RateLimitConfig, RateLimiter } from './rate-limit.ts';
import { creditNoteRoutes } from './resources/credit-notes.ts';
import { customerRoutes } from './resources/customers.ts';
import { accountRoutes, eventRoutes } from './resources/events.ts';
import { invoiceItemRoutes } from './resources/invoice-items.ts';
import { invoiceRoutes } from './resources/invoices.ts';
import { meterEventRoutes } from './resources/meter-events.ts';
import { meterRoutes } from './resources/meters.ts';
import { priceRoutes } from './resources/prices.ts';
import { productRoutes } from './resources/products.ts';
import { subscriptionRoutes } from './resources/subscriptions.ts';
import { webhookEndpointRoutes } from './resources/webhook-endpoints.ts';
import type { FakeSettings } from './router.ts';
import { createHandler, type RequestLogEntry } from './server.ts';
import { API_VERSION, type MeterErrorReport, Store, snapshot } from './store.ts';
import { aggregate } from './usage.ts';
import {
  DEFAULT_RETRY_SCHEDULE,
  type Delivery,
  WebhookDispatcher,
  type WebhookSettings,
} from './webhooks.ts';

export type { KeyConfig, PermissionResource, Permissions } from './auth.ts';
export type { FailSpec, RequestMatch } from './faults.ts';
export type { RequestLogEntry } from './server.ts';
export type { Delivery } from './webhooks.ts';
export { API_VERSION };

export interface StripeFakeOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Fake time at start, Unix seconds; defaults to now. */
  startTime?: number;
  clockMode?: ClockMode;
  accountId?: string;
  /** Accept every well-formed sk_test_/rk_test_ key with full access (default true). */
  acceptAnyTestKey?: boolean;
  /** Keys with a mode (`live` for live-mode rate limits) and, for rk_ keys, a permission set. */
  keys?: Record<string, KeyConfig>;
  /** Draft → finalized delay for renewal invoices; Stripe: 1 h default, at most 72 h. */
  invoiceGracePeriodSeconds?: number;
  /** Mark finalized invoices paid at once (no payment is modelled); zero-amount ones always are. */
  autoPay?: boolean;
  /** Meter event values: whole numbers (the usage guide) or decimals (newer API versions). */
  meterEventValues?: 'integer' | 'decimal';
  identifierWindowSeconds?: number;
  adjustmentWindowSeconds?: number;
  idempotencyTtlSeconds?: number;
  /** Event summaries only see events received this long ago (Stripe's are eventually consistent). */
  summaryLagSeconds?: number;
  rateLimits?: Partial<Omit<RateLimitConfig, 'live' | 'test'>> & {
    live?: Partial<ModeLimits>;
    test?: Partial<ModeLimits>;
  };
  webhooks?: Partial<WebhookSettings>;
}

export interface MeterEventView {
  identifier: string;
  event_name: string;
  meter: string;
  customer: string;
  value: string;
  timestamp: number;
  received_at: number;
  canceled_at: number | null;
  rejected: boolean;
  payload: Record<string, string>;
}

export interface StripeFake {
  url: string;
  host: string;
  port: number;
  apiVersion: string;
  /** A stripe-node client pointed at the fake (no retries unless `config` says so). */
  stripe(apiKey?: string, config?: Stripe.StripeConfig): Stripe;
  clock: {
    now(): number;
    /** Moves fake time forward, running rollovers, invoice creation/finalization and due webhooks in order. */
    advance(seconds: number): Promise<void>;
    advanceTo(timestamp: number): Promise<void>;
  };
  faults: Faults;
  rateLimits: {
    configure(patch: StripeFakeOptions['rateLimits'] & object): void;
    readonly config: RateLimitConfig;
  };
  keys: { add(key: string, config?: KeyConfig): void; revoke(key: string): void };
  settings: FakeSettings;
  webhooks: {
    /** Resolves when no delivery is in flight or due now. */
    settled(): Promise<void>;
    deliveries(): Delivery[];
    /** Signs a payload as a delivery to this endpoint would be signed. */
    sign(endpointId: string, payload: string): string;
    secret(endpointId: string): string | undefined;
  };
  /** Read-only copies of the fake's state, for assertions. */
  state: {
    meterEvents(meterId?: string): MeterEventView[];
    meterErrorReports(): MeterErrorReport[];
    /** The billable aggregate the fake would compute now for [start, end). */
    usage(meterId: string, customer: string, start: number, end: number): number;
    customers(): Stripe.Customer[];
    subscriptions(): Stripe.Subscription[];
    invoices(filter?: { customer?: string; subscription?: string }): Stripe.Invoice[];
    invoiceLines(invoiceId: string): Stripe.InvoiceLineItem[];
    invoiceItems(): Stripe.InvoiceItem[];
    creditNotes(): Stripe.CreditNote[];
    events(type?: string): Stripe.Event[];
    requests(): RequestLogEntry[];
  };
  close(): Promise<void>;
}

export async function startStripeFake(options: StripeFakeOptions = {}): Promise<StripeFake> {
  const clock = new FakeClock(options.startTime ?? Date.now() / 1000, options.clockMode ?? 'frozen');
  const accountId = options.accountId ?? `acct_${randomToken(16)}`;
  const store = new Store(clock, accountId);
  const grace = options.invoiceGracePeriodSeconds ?? 3600;
  if (grace < 0 || grace > 72 * 3600) throw new Error('invoiceGracePeriodSeconds must be within 0..72 h');
  const settings: FakeSettings = {
    invoiceGracePeriodSeconds: grace,
    autoPay: options.autoPay ?? false,
    meterEventValues: options.meterEventValues ?? 'integer',
    identifierWindowSeconds: options.identifierWindowSeconds ?? 86_400,
    adjustmentWindowSeconds: options.adjustmentWindowSeconds ?? 86_400,
    summaryLagSeconds: options.summaryLagSeconds ?? 0,
  };
  const faults = new Faults();
  const billing = new Billing(store, settings);
  const keys = new KeyRing(options.acceptAnyTestKey ?? true, accountId);
  for (const [key, config] of Object.entries(options.keys ?? {})) keys.add(key, config);
  const limiter = new RateLimiter(() => clock.now() * 1000);
  if (options.rateLimits) limiter.configure(options.rateLimits);
  const idempotency = new IdempotencyStore(() => clock.now(), options.idempotencyTtlSeconds ?? 86_400);
  const webhooks = new WebhookDispatcher(store, faults.webhooks, {
    retryScheduleSeconds: options.webhooks?.retryScheduleSeconds ?? DEFAULT_RETRY_SCHEDULE,
    timeoutMs: options.webhooks?.timeoutMs ?? 5000,
    signatureClock: options.webhooks?.signatureClock ?? 'wall',
  });
  const log: RequestLogEntry[] = [];
  const routes = [
    ...accountRoutes,
    ...customerRoutes,
    ...productRoutes,
    ...priceRoutes,
    ...meterRoutes,
    ...meterEventRoutes,
    ...subscriptionRoutes,
    ...invoiceRoutes,
    ...invoiceItemRoutes,
    ...creditNoteRoutes,
    ...webhookEndpointRoutes,
    ...eventRoutes,
  ];
  const handle = createHandler({ store, billing, faults, settings, keys, limiter, idempotency, routes, log });

  async function advanceTo(target: number): Promise<void> {
    // Step from one due moment to the next so that each rollover, finalization and retry happens at its
    // own time and in order, with its webhooks delivered before time moves on.
    for (let guard = 0; guard < 100_000; guard++) {
      billing.runDue();
      await webhooks.settled();
      const candidates = [billing.nextDueAt(), webhooks.nextDueAt()].filter(
        (t): t is number => t !== undefined,
      );
      const next = candidates.length > 0 ? Math.min(...candidates) : undefined;
      if (next === undefined || next > target) break;
      if (next > clock.now()) clock.setTo(next);
    }
    clock.setTo(target);
    billing.runDue();
    await webhooks.settled();
  }

  const fake: StripeFake = {
    url: '',
    host: options.host ?? '127.0.0.1',
    port: 0,
    apiVersion: API_VERSION,
    stripe(apiKey = 'sk_test_fake_meterline', config: Stripe.StripeConfig = {}) {
      return new Stripe(apiKey, {
        host: fake.host,
        port: fake.port,
        protocol: 'http',
        maxNetworkRetries: 0,
        telemetry: false,
        ...config,
      });
    },
    clock: {
      now: () => clock.now(),
      advance: (seconds) => advanceTo(clock.now() + seconds),
      advanceTo,
    },
    faults,
    rateLimits: {
      configure: (patch) => limiter.configure(patch),
      get config() {
        return limiter.config;
      },
    },
    keys: { add: (key, config) => keys.add(key, config), revoke: (key) => keys.revoke(key) },
    settings,
    webhooks: {
      settled: () => webhooks.settled(),
      deliveries: () => structuredClone(webhooks.deliveries),
      sign: (endpointId, payload) =>
        webhooks.signatureHeader(payload, store.webhookSecrets.get(endpointId) ?? ''),
      secret: (endpointId) => store.webhookSecrets.get(endpointId),
    },
    state: {
      meterEvents: (meterId) =>
        store.meterEvents
          .filter((r) => !meterId || r.meterId === meterId)
          .map((r) => ({
            identifier: r.event.identifier,
            event_name: r.event.event_name,
            meter: r.meterId,
            customer: r.customer,
            value: r.value,
            timestamp: r.event.timestamp,
            received_at: r.receivedAt,
            canceled_at: r.canceledAt,
            rejected: r.rejected,
            payload: { ...r.event.payload },
          })),
      meterErrorReports: () => structuredClone(store.meterErrorReports),
      usage: (meterId, customer, start, end) =>
        aggregate(store, { meterId, customer, start, end, asOf: clock.now() }).toNumber(),
      customers: () => snapshot([...store.customers.values()]),
      subscriptions: () => snapshot([...store.subscriptions.values()]),
      invoices: (filter = {}) => {
        const all = [...store.invoices.values()].filter(
          (inv) =>
            (!filter.customer || inv.customer === filter.customer) &&
            (!filter.subscription || inv.parent?.subscription_details?.subscription === filter.subscription),
        );
        for (const inv of all) if (inv.status === 'draft') billing.recompute(inv);
        return snapshot(all);
      },
      invoiceLines: (invoiceId) => {
        const inv = store.invoices.get(invoiceId);
        return inv ? snapshot(billing.allLines(inv)) : [];
      },
      invoiceItems: () => snapshot([...store.invoiceItems.values()]),
      creditNotes: () => snapshot([...store.creditNotes.values()]),
      events: (type) => snapshot([...store.events.values()].filter((e) => !type || e.type === type)),
      requests: () => structuredClone(log),
    },
    async close() {
      clearInterval(ticker);
      webhooks.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // stripe-node keeps connections alive; without this, close() would wait for them to time out.
      server.closeAllConnections();
      await closed;
    },
  };

  const control = controlApi(fake, advanceTo);
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/_fake/')) {
      void control(req, res);
      return;
    }
    void handle(req, res);
  });
  // In running mode the fake acts on its own, like Stripe: a tick runs what fell due.
  const ticker = setInterval(() => {
    if (clock.mode === 'running') {
      billing.runDue();
      void webhooks.pump();
    }
  }, 1000);
  ticker.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, fake.host, () => resolve());
  });
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://${fake.host}:${fake.port}`;
  return fake;
}
