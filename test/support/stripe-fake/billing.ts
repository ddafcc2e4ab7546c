import type Stripe from 'stripe';
import { addInterval } from './clock.ts';
import { newId } from './ids.ts';
import { billableQuantity, Invoicing, lineAmount, productName } from './invoicing.ts';
import { type LineSpec, type SubscriptionState, snapshot } from './store.ts';
import { aggregate } from './usage.ts';

// The clock-driven side of Stripe Billing: subscription periods and their rollover, the renewal invoice
// drafted at period end and finalized after the grace period (see invoicing.ts), and cancellation.

export interface CancelOptions {
  invoiceNow?: boolean;
  prorate?: boolean;
}

export class Billing extends Invoicing {
  // ---- subscription periods -------------------------------------------------------------------------

  boundary(state: SubscriptionState, k: number): number {
    return addInterval(state.anchor, state.interval, k * state.intervalCount);
  }

  period(subId: string): { start: number; end: number } {
    const state = this.store.subscriptionState.get(subId);
    if (!state) throw new Error(`no state for ${subId}`);
    return {
      start: Math.max(this.boundary(state, state.period), state.start),
      end: this.boundary(state, state.period + 1),
    };
  }

  /** The period index containing `t`. */
  periodIndexAt(state: SubscriptionState, t: number): number {
    let k = 0;
    while (this.boundary(state, k) > t) k -= 1;
    while (this.boundary(state, k + 1) <= t) k += 1;
    return k;
  }

  /** Writes the current period onto each item (where the period lives since API 2025-03-31.basil). */
  syncItemPeriods(sub: Stripe.Subscription): void {
    const { start, end } = this.period(sub.id);
    for (const item of sub.items.data) {
      const since = this.store.itemState.get(item.id)?.usageSince ?? start;
      item.current_period_start = Math.max(start, since);
      item.current_period_end = end;
    }
  }

  // ---- timers ---------------------------------------------------------------------------------------

  /** The earliest moment at which clock-driven billing work is due. */
  nextDueAt(): number | undefined {
    let next: number | undefined;
    const consider = (t: number) => {
      if (next === undefined || t < next) next = t;
    };
    for (const sub of this.store.subscriptions.values()) {
      if (isLive(sub)) consider(this.period(sub.id).end);
    }
    for (const inv of this.store.invoices.values()) {
      if (inv.status === 'draft' && inv.auto_advance && inv.automatically_finalizes_at !== null) {
        consider(inv.automatically_finalizes_at);
      }
    }
    return next;
  }

  /** Runs everything due at or before now, earliest first. */
  runDue(): void {
    for (;;) {
      const next = this.nextDueAt();
      if (next === undefined || next > this.store.now()) return;
      const sub = [...this.store.subscriptions.values()].find(
        (s) => isLive(s) && this.period(s.id).end === next,
      );
      if (sub) {
        this.renew(sub);
        continue;
      }
      const inv = [...this.store.invoices.values()].find(
        (i) => i.status === 'draft' && i.auto_advance && i.automatically_finalizes_at === next,
      );
      if (inv) this.finalize(inv);
    }
  }

  /** Period end: draft the renewal invoice for the ended period, then roll every item over. */
  private renew(sub: Stripe.Subscription): void {
    const state = this.store.subscriptionState.get(sub.id) as SubscriptionState;
    const ended = this.period(sub.id);
    const before = snapshot(sub);
    const ending = sub.cancel_at_period_end;
    state.period += 1;
    const next = this.period(sub.id);
    const lines: LineSpec[] = [];
    for (const item of sub.items.data) {
      const since = this.store.itemState.get(item.id)?.usageSince ?? ended.start;
      if (item.price.recurring?.usage_type === 'metered') {
        lines.push({
          kind: 'metered',
          lineId: newId('il', 24),
          itemId: item.id,
          subscription: sub.id,
          priceId: item.price.id,
          start: Math.max(ended.start, since),
          end: ended.end,
        });
      } else if (!ending) {
        // Licensed prices bill in advance: the renewal invoice carries the coming period.
        lines.push({
          kind: 'licensed',
          lineId: newId('il', 24),
          itemId: item.id,
          subscription: sub.id,
          priceId: item.price.id,
          quantity: item.quantity ?? 1,
          start: next.start,
          end: next.end,
        });
      }
      this.store.itemState.set(item.id, { usageSince: ended.end });
    }
    const invoice = this.createInvoice({
      customer: sub.customer as string,
      subscription: sub,
      billingReason: 'subscription_cycle',
      periodStart: ended.start,
      periodEnd: ended.end,
      lines,
      pendingItems: true,
    });
    sub.latest_invoice = invoice.id;
    if (ending) {
      this.endSubscription(sub, ended.end);
      this.store.emit('customer.subscription.deleted', sub, changedItems(before, sub));
    } else {
      this.syncItemPeriods(sub);
      this.store.emit('customer.subscription.updated', sub, changedItems(before, sub));
    }
  }

  private endSubscription(sub: Stripe.Subscription, at: number): void {
    sub.status = 'canceled';
    sub.ended_at = at;
    sub.canceled_at = sub.canceled_at ?? at;
  }

  /** DELETE /v1/subscriptions/:id; with invoice_now, the unbilled metered usage goes on a final invoice. */
  cancelNow(sub: Stripe.Subscription, opts: CancelOptions): void {
    const now = this.store.now();
    const before = snapshot(sub);
    if (opts.invoiceNow) {
      const { start } = this.period(sub.id);
      const lines: LineSpec[] = sub.items.data
        .filter((item) => item.price.recurring?.usage_type === 'metered')
        .map((item) => ({
          kind: 'metered' as const,
          lineId: newId('il', 24),
          itemId: item.id,
          subscription: sub.id,
          priceId: item.price.id,
          start: Math.max(start, this.store.itemState.get(item.id)?.usageSince ?? start),
          end: now,
        }));
      const invoice = this.createInvoice({
        customer: sub.customer as string,
        subscription: sub,
        billingReason: 'subscription_update',
        periodStart: start,
        periodEnd: now,
        lines,
        pendingItems: true,
      });
      sub.latest_invoice = invoice.id;
    }
    this.endSubscription(sub, now);
    this.store.emit('customer.subscription.deleted', sub, changedItems(before, sub));
  }

  /**
   * billing_mode=flexible: removing a metered price (price change or item deletion) bills the usage so far
   * at the old price as a pending invoice item, unless proration_behavior=none.
   */
  billUsageToDate(sub: Stripe.Subscription, item: Stripe.SubscriptionItem): void {
    const { start } = this.period(sub.id);
    const since = Math.max(start, this.store.itemState.get(item.id)?.usageSince ?? start);
    const now = this.store.now();
    const price = item.price;
    const meterId = price.recurring?.meter;
    if (!meterId || now <= since) return;
    const quantity = billableQuantity(
      aggregate(this.store, { meterId, customer: sub.customer as string, start: since, end: now, asOf: now }),
      price,
    );
    const invoiceItem = this.newInvoiceItem({
      customer: sub.customer as string,
      currency: price.currency,
      amount: lineAmount(quantity, price),
      quantity,
      price,
      description: `Usage of ${productName(this.store, price)} until the price change`,
      period: { start: since, end: now },
      subscription: sub.id,
      subscriptionItem: item.id,
    });
    this.store.emit('invoiceitem.created', invoiceItem);
  }
}

function isLive(sub: Stripe.Subscription): boolean {
  return sub.status !== 'canceled' && sub.status !== 'incomplete_expired';
}

function changedItems(before: Stripe.Subscription, after: Stripe.Subscription): object {
  const previous: Record<string, unknown> = {};
  for (const key of ['items', 'latest_invoice', 'status', 'ended_at', 'canceled_at'] as const) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) previous[key] = before[key];
  }
  return previous;
}
