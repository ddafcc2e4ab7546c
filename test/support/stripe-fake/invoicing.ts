import type Stripe from 'stripe';
import { newId } from './ids.ts';
import type { FakeSettings } from './router.ts';
import type { InvoiceState, LineSpec, Store } from './store.ts';
import { aggregate, type Decimal, dec, ZERO } from './usage.ts';

// Invoices and invoice items: a draft follows the usage reported so far; finalization takes the latest
// usage, freezes the lines and applies the customer's balance.

const LINES_EMBEDDED = 10;

export class Invoicing {
  constructor(
    protected readonly store: Store,
    protected readonly settings: FakeSettings,
  ) {}

  newInvoiceItem(input: {
    customer: string;
    currency: string;
    amount: number;
    quantity: Decimal;
    price?: Stripe.Price;
    unitAmountDecimal?: Decimal;
    description: string | null;
    period: { start: number; end: number };
    subscription?: string;
    subscriptionItem?: string;
    invoice?: string;
    metadata?: Record<string, string>;
  }): Stripe.InvoiceItem {
    const item: Stripe.InvoiceItem = {
      id: newId('ii', 24),
      object: 'invoiceitem',
      amount: input.amount,
      currency: input.currency,
      customer: input.customer,
      customer_account: null,
      date: this.store.now(),
      description: input.description,
      discountable: true,
      discounts: [],
      invoice: input.invoice ?? null,
      livemode: false,
      metadata: input.metadata ?? {},
      net_amount: input.amount,
      parent: input.subscription
        ? {
            type: 'subscription_details',
            subscription_details: input.subscriptionItem
              ? { subscription: input.subscription, subscription_item: input.subscriptionItem }
              : { subscription: input.subscription },
          }
        : null,
      period: input.period,
      pricing: {
        type: 'price_details',
        ...(input.price ? { price_details: { price: input.price.id, product: productId(input.price) } } : {}),
        unit_amount_decimal: input.price?.unit_amount_decimal ?? input.unitAmountDecimal ?? null,
      },
      proration: false,
      quantity: Math.round(input.quantity.toNumber()),
      quantity_decimal: input.quantity,
      tax_rates: [],
      test_clock: null,
    };
    this.store.invoiceItems.set(item.id, item);
    if (input.invoice) {
      const state = this.store.invoiceState.get(input.invoice);
      const inv = this.store.invoices.get(input.invoice);
      if (state && inv) {
        state.lines.push({ kind: 'invoiceitem', lineId: newId('il', 24), invoiceItemId: item.id });
        this.recompute(inv);
      }
    }
    return item;
  }

  // ---- invoices -------------------------------------------------------------------------------------

  createInvoice(input: {
    customer: string;
    subscription?: Stripe.Subscription;
    billingReason: Stripe.Invoice.BillingReason;
    periodStart: number;
    periodEnd: number;
    lines: LineSpec[];
    /** Attach the customer's pending invoice items, as Stripe does on the next subscription invoice. */
    pendingItems: boolean;
    /** Finalize at once (the first invoice of a subscription) instead of after the grace period. */
    finalizeNow?: boolean;
  }): Stripe.Invoice {
    const now = this.store.now();
    const customer = this.store.customers.get(input.customer);
    const id = newId('in', 24);
    const lines = [...input.lines];
    if (input.pendingItems) {
      for (const ii of this.store.invoiceItems.values()) {
        if (ii.customer === input.customer && ii.invoice === null) {
          ii.invoice = id;
          lines.push({ kind: 'invoiceitem', lineId: newId('il', 24), invoiceItemId: ii.id });
        }
      }
    }
    const currency = input.subscription?.currency ?? 'usd';
    const inv: Stripe.Invoice = {
      id,
      object: 'invoice',
      account_country: 'US',
      account_name: 'Stripe fake',
      account_tax_ids: null,
      amount_due: 0,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: 0,
      amount_shipping: 0,
      application: null,
      attempt_count: 0,
      attempted: false,
      auto_advance: true,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
      automatically_finalizes_at: now + this.settings.invoiceGracePeriodSeconds,
      billing_reason: input.billingReason,
      collection_method: 'charge_automatically',
      created: now,
      currency,
      custom_fields: null,
      customer: input.customer,
      customer_account: null,
      customer_address: null,
      customer_email: customer?.email ?? null,
      customer_name: customer?.name ?? null,
      customer_phone: customer?.phone ?? null,
      customer_shipping: null,
      customer_tax_exempt: 'none',
      customer_tax_ids: [],
      default_payment_method: null,
      default_source: null,
      default_tax_rates: [],
      description: null,
      discounts: [],
      due_date: null,
      effective_at: null,
      ending_balance: null,
      footer: null,
      from_invoice: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      issuer: { type: 'self' },
      last_finalization_error: null,
      latest_revision: null,
      lines: { object: 'list', data: [], has_more: false, url: `/v1/invoices/${id}/lines` },
      livemode: false,
      metadata: {},
      next_payment_attempt: null,
      number: null,
      on_behalf_of: null,
      parent: input.subscription
        ? {
            type: 'subscription_details',
            quote_details: null,
            subscription_details: {
              metadata: input.subscription.metadata,
              subscription: input.subscription.id,
            },
          }
        : null,
      payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
      period_end: input.periodEnd,
      period_start: input.periodStart,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      receipt_number: null,
      rendering: null,
      shipping_cost: null,
      shipping_details: null,
      starting_balance: 0,
      statement_descriptor: null,
      status: 'draft',
      status_transitions: {
        finalized_at: null,
        marked_uncollectible_at: null,
        paid_at: null,
        voided_at: null,
      },
      subtotal: 0,
      subtotal_excluding_tax: 0,
      test_clock: null,
      total: 0,
      total_discount_amounts: [],
      total_excluding_tax: 0,
      total_pretax_credit_amounts: [],
      total_taxes: [],
      webhooks_delivered_at: null,
    };
    this.store.invoices.set(id, inv);
    this.store.invoiceState.set(id, { lines, rendered: [] });
    this.recompute(inv);
    this.store.emit('invoice.created', inv);
    if (input.finalizeNow) this.finalize(inv);
    return inv;
  }

  /** A draft follows the usage reported so far; a finalized invoice never changes its lines. */
  recompute(inv: Stripe.Invoice): void {
    const state = this.store.invoiceState.get(inv.id) as InvoiceState;
    if (inv.status === 'draft') {
      state.rendered = state.lines.map((spec) => this.renderLine(inv, spec));
    }
    inv.lines = {
      object: 'list',
      data: state.rendered.slice(0, LINES_EMBEDDED),
      has_more: state.rendered.length > LINES_EMBEDDED,
      url: `/v1/invoices/${inv.id}/lines`,
    };
    const subtotal = state.rendered.reduce((sum, line) => sum + line.amount, 0);
    inv.subtotal = subtotal;
    inv.subtotal_excluding_tax = subtotal;
    inv.total = subtotal;
    inv.total_excluding_tax = subtotal;
    const due = subtotal + inv.starting_balance - inv.pre_payment_credit_notes_amount;
    inv.amount_due = Math.max(0, due);
    inv.amount_remaining = Math.max(0, inv.amount_due - inv.amount_paid);
  }

  allLines(inv: Stripe.Invoice): Stripe.InvoiceLineItem[] {
    if (inv.status === 'draft') this.recompute(inv);
    return (this.store.invoiceState.get(inv.id) as InvoiceState).rendered;
  }

  private renderLine(inv: Stripe.Invoice, spec: LineSpec): Stripe.InvoiceLineItem {
    const base = {
      id: spec.lineId,
      object: 'line_item' as const,
      currency: inv.currency,
      discount_amounts: [],
      discountable: true,
      discounts: [],
      invoice: inv.id,
      livemode: false,
      pretax_credit_amounts: [],
      taxes: [],
    };
    if (spec.kind === 'invoiceitem') {
      const ii = this.store.invoiceItems.get(spec.invoiceItemId) as Stripe.InvoiceItem;
      const subscription = ii.parent?.subscription_details?.subscription ?? null;
      return {
        ...base,
        amount: ii.amount,
        description: ii.description,
        metadata: ii.metadata ?? {},
        parent: {
          type: 'invoice_item_details',
          invoice_item_details: {
            invoice_item: ii.id,
            proration: ii.proration,
            proration_details: { credited_items: null },
            subscription,
          },
          subscription_item_details: null,
        },
        period: ii.period,
        pricing: ii.pricing,
        quantity: ii.quantity,
        quantity_decimal: ii.quantity_decimal,
        subscription,
        subtotal: ii.amount,
      };
    }
    const price = this.store.prices.get(spec.priceId) as Stripe.Price;
    let quantity: Decimal;
    if (spec.kind === 'metered') {
      const meterId = price.recurring?.meter as string;
      const raw = aggregate(this.store, {
        meterId,
        customer: inv.customer as string,
        start: spec.start,
        end: spec.end,
        asOf: this.store.now(),
      });
      quantity = billableQuantity(raw, price);
    } else {
      quantity = dec(spec.quantity);
    }
    const amount = lineAmount(quantity, price);
    return {
      ...base,
      amount,
      description: `${quantity.toString()} × ${productName(this.store, price)}`,
      metadata: {},
      parent: {
        type: 'subscription_item_details',
        invoice_item_details: null,
        subscription_item_details: {
          invoice_item: null,
          proration: false,
          proration_details: { credited_items: null },
          subscription: spec.subscription,
          subscription_item: spec.itemId,
        },
      },
      period: { start: spec.start, end: spec.end },
      pricing: {
        type: 'price_details',
        price_details: { price: price.id, product: productId(price) },
        unit_amount_decimal: price.unit_amount_decimal,
      },
      quantity: Math.round(quantity.toNumber()),
      quantity_decimal: quantity,
      subscription: spec.subscription,
      subtotal: amount,
    };
  }

  /** Takes the latest usage, freezes the lines, applies the customer's balance, then pays if it can. */
  finalize(inv: Stripe.Invoice): void {
    const now = this.store.now();
    this.recompute(inv);
    const customer = this.store.customers.get(inv.customer as string);
    inv.status = 'open';
    inv.auto_advance = false;
    inv.automatically_finalizes_at = null;
    inv.status_transitions.finalized_at = now;
    inv.effective_at = now;
    if (customer) {
      inv.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence ?? 1).padStart(4, '0')}`;
      customer.next_invoice_sequence = (customer.next_invoice_sequence ?? 1) + 1;
      // The customer's balance (negative = credit, e.g. from credit notes on paid invoices) applies here.
      inv.starting_balance = customer.balance;
      const due = inv.total + customer.balance;
      inv.ending_balance = Math.min(0, due);
      customer.balance = inv.ending_balance;
    }
    this.recompute(inv);
    this.store.emit('invoice.finalized', inv);
    if (inv.amount_due === 0 || this.settings.autoPay) this.markPaid(inv);
  }

  markPaid(inv: Stripe.Invoice): void {
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.status = 'paid';
    inv.status_transitions.paid_at = this.store.now();
    if (inv.amount_paid > 0) {
      inv.attempted = true;
      inv.attempt_count = 1;
    }
    this.store.emit('invoice.paid', inv);
    this.store.emit('invoice.payment_succeeded', inv);
  }
}

/** Negative cycle totals bill as 0; transform_quantity divides and rounds. */
export function billableQuantity(raw: Decimal, price: Stripe.Price): Decimal {
  const q = raw.isNegative() ? ZERO : raw;
  const t = price.transform_quantity;
  if (!t) return q;
  return q.div(dec(t.divide_by), 0, t.round === 'down' ? 'floor' : 'ceil');
}

/** Amounts are whole units of the currency's smallest unit, rounded half up. */
export function lineAmount(quantity: Decimal, price: Stripe.Price): number {
  const unit = price.unit_amount_decimal ?? dec(price.unit_amount ?? 0);
  return quantity.mul(unit).round('half-up', { mode: 'decimal-places', value: 0 }).toNumber();
}

export function productId(price: Stripe.Price): string {
  return typeof price.product === 'string' ? price.product : price.product.id;
}

export function productName(store: Store, price: Stripe.Price): string {
  return store.products.get(productId(price))?.name ?? productId(price);
}
