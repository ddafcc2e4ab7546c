import type Stripe from 'stripe';
import type { MirrorCustomer, MirrorMeter, MirrorPrice, MirrorSubscription } from './store.ts';

/** Stripe objects (API 2026-10-28) reduced to what Meterline bills from. */

const date = (seconds: number) => new Date(seconds * 1000);
const idOf = (ref: string | { id: string }) => (typeof ref === 'string' ? ref : ref.id);

export function fromStripeCustomer(customer: Stripe.Customer | Stripe.DeletedCustomer): MirrorCustomer {
  if ('deleted' in customer && customer.deleted) {
    return { id: customer.id, email: null, name: null, metadata: {}, deleted: true };
  }
  const c = customer as Stripe.Customer;
  return {
    id: c.id,
    email: c.email ?? null,
    name: c.name ?? null,
    metadata: c.metadata ?? {},
    deleted: false,
  };
}

export function fromStripeMeter(meter: Stripe.Billing.Meter): MirrorMeter {
  return {
    id: meter.id,
    eventName: meter.event_name,
    displayName: meter.display_name ?? null,
    formula: meter.default_aggregation.formula,
    eventTimeWindow: meter.event_time_window ?? null,
    customerPayloadKey: meter.customer_mapping.event_payload_key,
    valuePayloadKey: meter.value_settings.event_payload_key,
    status: meter.status,
  };
}

export function fromStripePrice(price: Stripe.Price): MirrorPrice {
  return {
    id: price.id,
    productId: price.product ? idOf(price.product as string | { id: string }) : null,
    meterId: price.recurring?.meter ?? null,
    usageType: price.recurring?.usage_type ?? null,
    unitAmountDecimal:
      price.unit_amount_decimal !== null && price.unit_amount_decimal !== undefined
        ? String(price.unit_amount_decimal)
        : price.unit_amount !== null
          ? String(price.unit_amount)
          : null,
    currency: price.currency,
    active: price.active,
  };
}

export function fromStripeSubscription(subscription: Stripe.Subscription): MirrorSubscription {
  return {
    id: subscription.id,
    customerId: idOf(subscription.customer as string | { id: string }),
    status: subscription.status,
    cancelAtPeriodEnd: subscription.cancel_at_period_end,
    canceledAt: subscription.canceled_at ? date(subscription.canceled_at) : null,
    items: subscription.items.data.map((item) => ({
      id: item.id,
      priceId: item.price.id,
      currentPeriodStart: date(item.current_period_start),
      currentPeriodEnd: date(item.current_period_end),
    })),
  };
}
