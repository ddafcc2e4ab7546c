import type Stripe from 'stripe';
import type { FakeClock } from './clock.ts';
import { newId, randomToken } from './ids.ts';

export const API_VERSION = '2026-10-28.endive';

/** A received meter event with what Stripe derived from it when processing it. */
export interface MeterEventRecord {
  seq: number;
  event: Stripe.Billing.MeterEvent;
  meterId: string;
  customer: string;
  /** Exact decimal text of the value (`'1'` per event for count meters without a value). */
  value: string;
  receivedAt: number;
  canceledAt: number | null;
  /** Accepted but unusable (inactive meter, unknown customer): reported, never counted. */
  rejected: boolean;
}

/** What Stripe reports asynchronously (v1.billing.meter.error_report_triggered) for an unusable event. */
export interface MeterErrorReport {
  code: 'meter_event_customer_not_found' | 'archived_meter';
  message: string;
  identifier: string;
  event_name: string;
  at: number;
}

export interface RequestInfo {
  id: string;
  idempotencyKey: string | null;
}

export interface SubscriptionState {
  anchor: number;
  start: number;
  interval: 'day' | 'week' | 'month' | 'year';
  intervalCount: number;
  /** Index of the current period: it runs from boundary(k) (not before `start`) to boundary(k + 1). */
  period: number;
}

export interface ItemState {
  /** Usage of the item's meter counts from here: the period start, or when the item or price changed. */
  usageSince: number;
}

export type LineSpec =
  | {
      kind: 'metered';
      lineId: string;
      itemId: string;
      subscription: string;
      priceId: string;
      start: number;
      end: number;
    }
  | {
      kind: 'licensed';
      lineId: string;
      itemId: string;
      subscription: string;
      priceId: string;
      quantity: number;
      start: number;
      end: number;
    }
  | { kind: 'invoiceitem'; lineId: string; invoiceItemId: string };

export interface InvoiceState {
  lines: LineSpec[];
  /** The lines as last computed; frozen at finalization. */
  rendered: Stripe.InvoiceLineItem[];
}

type Listener = (event: Stripe.Event) => void;

/** All of the fake's objects, as Stripe's types, plus the bookkeeping Stripe keeps out of sight. */
export class Store {
  readonly account: Stripe.Account;
  readonly customers = new Map<string, Stripe.Customer>();
  readonly deletedCustomers = new Set<string>();
  readonly products = new Map<string, Stripe.Product>();
  readonly prices = new Map<string, Stripe.Price>();
  readonly meters = new Map<string, Stripe.Billing.Meter>();
  readonly meterEvents: MeterEventRecord[] = [];
  readonly identifiers = new Map<string, MeterEventRecord>();
  readonly adjustments: Array<{ adjustment: Stripe.Billing.MeterEventAdjustment; at: number }> = [];
  readonly meterErrorReports: MeterErrorReport[] = [];
  readonly subscriptions = new Map<string, Stripe.Subscription>();
  readonly subscriptionState = new Map<string, SubscriptionState>();
  readonly itemState = new Map<string, ItemState>();
  readonly invoices = new Map<string, Stripe.Invoice>();
  readonly invoiceState = new Map<string, InvoiceState>();
  readonly invoiceItems = new Map<string, Stripe.InvoiceItem>();
  readonly creditNotes = new Map<string, Stripe.CreditNote>();
  readonly webhookEndpoints = new Map<string, Stripe.WebhookEndpoint>();
  readonly webhookSecrets = new Map<string, string>();
  readonly events = new Map<string, Stripe.Event>();
  /** The API request being handled, recorded on the events it causes (null for clock-driven work). */
  currentRequest: RequestInfo | null = null;
  private seq = 0;
  private readonly listeners: Listener[] = [];

  constructor(
    readonly clock: FakeClock,
    accountId: string,
  ) {
    this.account = {
      id: accountId,
      object: 'account',
      business_profile: null,
      business_type: 'company',
      charges_enabled: true,
      country: 'US',
      created: clock.now(),
      default_currency: 'usd',
      details_submitted: true,
      email: 'billing@example.test',
      metadata: {},
      payouts_enabled: true,
      settings: {
        branding: { icon: null, logo: null, primary_color: null, secondary_color: null },
        card_payments: {
          statement_descriptor_prefix: null,
          statement_descriptor_prefix_kana: null,
          statement_descriptor_prefix_kanji: null,
        },
        dashboard: { display_name: 'Stripe fake', timezone: 'Etc/UTC' },
        payments: {
          statement_descriptor: 'STRIPE FAKE',
          statement_descriptor_kana: null,
          statement_descriptor_kanji: null,
          statement_descriptor_prefix_kana: null,
          statement_descriptor_prefix_kanji: null,
        },
      },
      type: 'standard',
    };
  }

  now(): number {
    return this.clock.now();
  }

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  onEvent(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Records an event with a snapshot of the object as it is now, and hands it to webhook delivery. */
  emit(type: Stripe.Event.Type, object: object, previousAttributes?: object): Stripe.Event {
    const endpoints = [...this.webhookEndpoints.values()].filter(
      (e) => e.status === 'enabled' && (e.enabled_events.includes('*') || e.enabled_events.includes(type)),
    );
    const data: Stripe.Event.Data = { object: snapshot(object) };
    if (previousAttributes) data.previous_attributes = snapshot(previousAttributes);
    const base: Stripe.EventBase = {
      id: newId('evt', 24),
      object: 'event',
      api_version: API_VERSION,
      created: this.now(),
      data,
      livemode: false,
      pending_webhooks: endpoints.length,
      request: this.currentRequest
        ? { id: this.currentRequest.id, idempotency_key: this.currentRequest.idempotencyKey }
        : { id: null, idempotency_key: null },
      type,
    };
    // Stripe.Event is a union keyed by `type`; the generic base is what every member shares.
    const event = base as Stripe.Event;
    this.events.set(event.id, event);
    for (const listener of this.listeners) listener(event);
    return event;
  }

  newInvoicePrefix(): string {
    return randomToken(8).toUpperCase();
  }
}

/** A deep copy in wire form (Decimals become strings), so later changes don't leak into stored events. */
export function snapshot<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
