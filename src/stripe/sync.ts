import type { Logger } from 'pino';
import type Stripe from 'stripe';
import { withStripeBackoff } from './client.ts';
import { fromStripeCustomer, fromStripeMeter, fromStripePrice, fromStripeSubscription } from './mirror.ts';
import type { Mirror, StripeStore } from './store.ts';

/** The Stripe events Meterline consumes (the webhook endpoint subscribes to exactly these). */
export const CONSUMED_EVENTS = [
  'customer.created',
  'customer.updated',
  'customer.deleted',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'billing.meter.created',
  'billing.meter.updated',
  'billing.meter.deactivated',
  'billing.meter.reactivated',
  'invoice.upcoming',
  'invoice.created',
  'invoice.finalized',
  'invoice.voided',
] as const;

async function listAll<T>(page: (startingAfter?: string) => Promise<Stripe.ApiList<T & { id: string }>>) {
  const all: (T & { id: string })[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const list = await withStripeBackoff(() => page(startingAfter));
    all.push(...list.data);
    const last = list.data[list.data.length - 1];
    if (!list.has_more || !last) return all;
    startingAfter = last.id;
  }
}

/** Reads every object the mirror holds from Stripe, page by page. */
export async function readStripe(stripe: Stripe): Promise<Mirror> {
  const [customers, meters, prices, subscriptions] = [
    await listAll((after) => stripe.customers.list({ limit: 100, starting_after: after })),
    await listAll((after) => stripe.billing.meters.list({ limit: 100, starting_after: after })),
    await listAll((after) => stripe.prices.list({ limit: 100, starting_after: after })),
    await listAll((after) => stripe.subscriptions.list({ limit: 100, status: 'all', starting_after: after })),
  ];
  return {
    customers: customers.map(fromStripeCustomer),
    meters: meters.map(fromStripeMeter),
    prices: prices.map(fromStripePrice),
    subscriptions: subscriptions.map(fromStripeSubscription),
  };
}

/**
 * Makes the mirror equal to Stripe: the backfill on connect and the periodic reconcile that heals
 * missed webhooks. The re-read counts as at least as fresh as the newest event already applied,
 * so a late delivery of an older event cannot undo it.
 */
export async function reconcileMirror(
  stripe: Stripe,
  store: StripeStore,
  namespace: string,
): Promise<Mirror> {
  const at = await store.latestEventTime(namespace);
  const state = await readStripe(stripe);
  await store.inTransaction(async (q) => {
    for (const c of state.customers) await store.putCustomer(q, namespace, c, at, true);
    for (const m of state.meters) await store.putMeter(q, namespace, m, at, true);
    for (const p of state.prices) await store.putPrice(q, namespace, p, at);
    for (const s of state.subscriptions) await store.putSubscription(q, namespace, s, at, true);
    await store.pruneMirror(q, namespace, state);
  });
  return state;
}

type ObjectTable = 'stripe_customers' | 'stripe_subscriptions' | 'stripe_meters';

/**
 * Applies one verified webhook event, once. A newer stored state wins over an older event; an
 * event from the same second as the stored state cannot be ordered, so the object is re-fetched.
 * Returns what happened, for the log and the tests.
 */
export async function applyStripeEvent(
  stripe: Stripe,
  store: StripeStore,
  namespace: string,
  event: Stripe.Event,
  logger: Logger,
): Promise<'applied' | 'duplicate' | 'stale' | 'ignored'> {
  return store.inTransaction(async (q) => {
    if (!(await store.claimEvent(q, namespace, event))) return 'duplicate';
    const at = new Date(event.created * 1000);
    const object = event.data.object as { id: string; object: string };
    const table: ObjectTable | undefined =
      object.object === 'customer'
        ? 'stripe_customers'
        : object.object === 'subscription'
          ? 'stripe_subscriptions'
          : object.object === 'billing.meter'
            ? 'stripe_meters'
            : undefined;
    if (!table) return 'ignored'; // invoices are for the billing jobs; other objects are not tracked
    const stored = await store.sourceAt(q, table, namespace, object.id);
    if (stored && stored.getTime() > at.getTime()) return 'stale';
    const refetch = stored !== undefined && stored.getTime() === at.getTime();
    if (refetch)
      logger.debug({ event: event.id, object: object.id }, 'same-second update: re-fetching from Stripe');

    if (table === 'stripe_customers') {
      const customer = refetch
        ? await withStripeBackoff(() => stripe.customers.retrieve(object.id))
        : (event.data.object as Stripe.Customer);
      const mirrored = fromStripeCustomer(
        event.type === 'customer.deleted' && !refetch
          ? { id: object.id, object: 'customer', deleted: true }
          : customer,
      );
      await store.putCustomer(q, namespace, mirrored, at, refetch);
    } else if (table === 'stripe_subscriptions') {
      const subscription = refetch
        ? await withStripeBackoff(() => stripe.subscriptions.retrieve(object.id))
        : (event.data.object as Stripe.Subscription);
      for (const item of subscription.items.data)
        await store.putPrice(q, namespace, fromStripePrice(item.price), at);
      await store.putSubscription(q, namespace, fromStripeSubscription(subscription), at, refetch);
    } else {
      const meter = refetch
        ? await withStripeBackoff(() => stripe.billing.meters.retrieve(object.id))
        : (event.data.object as Stripe.Billing.Meter);
      await store.putMeter(q, namespace, fromStripeMeter(meter), at, refetch);
    }
    return 'applied';
  });
}
