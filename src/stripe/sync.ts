import type { PoolClient } from 'pg';
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

const byId = <T extends { id: string }>(list: T[]) =>
  [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/**
 * Makes the mirror equal to Stripe: the backfill on connect and the periodic reconcile that heals
 * missed webhooks. The snapshot is stamped with the second its read started and replaces only
 * older state: an event applied meanwhile may be newer than what the slow read saw, and stays.
 * It first locks the namespace's mirror, so a delivery racing it waits and then compares with the
 * written state; rows are written in id order, as webhooks write them.
 */
export async function reconcileMirror(
  stripe: Stripe,
  store: StripeStore,
  namespace: string,
  now: () => Date,
): Promise<Mirror> {
  // Stripe's times are whole seconds; flooring also absorbs a sub-second lead of our clock over Stripe's.
  const readStart = new Date(Math.floor(now().getTime() / 1000) * 1000);
  const state = await readStripe(stripe);
  await store.inTransaction(async (q) => {
    await store.lockMirror(q, namespace);
    for (const c of byId(state.customers)) await store.putCustomer(q, namespace, c, readStart, 'reread');
    for (const m of byId(state.meters)) await store.putMeter(q, namespace, m, readStart, 'reread');
    for (const p of byId(state.prices)) await store.putPrice(q, namespace, p, readStart, 'reread');
    for (const s of byId(state.subscriptions))
      await store.putSubscription(q, namespace, s, readStart, 'reread');
    await store.pruneMirror(q, namespace, state, readStart);
  });
  return state;
}

type Tracked = {
  table: 'stripe_customers' | 'stripe_subscriptions' | 'stripe_meters';
  write: (q: PoolClient, at: Date) => Promise<void>;
};

/** The mirror write for a Stripe object, or undefined when the mirror does not track its kind. */
function tracked(
  store: StripeStore,
  namespace: string,
  object: unknown,
  deleted: boolean,
): Tracked | undefined {
  const kind = (object as { object: string }).object;
  if (kind === 'customer') {
    const c = object as Stripe.Customer;
    const customer = fromStripeCustomer(deleted ? { id: c.id, object: 'customer', deleted: true } : c);
    return {
      table: 'stripe_customers',
      write: (q, at) => store.putCustomer(q, namespace, customer, at, 'event'),
    };
  }
  if (kind === 'subscription') {
    const s = object as Stripe.Subscription;
    const subscription = fromStripeSubscription(s);
    const prices = byId(s.items.data.map((item) => fromStripePrice(item.price)));
    return {
      table: 'stripe_subscriptions',
      write: async (q, at) => {
        for (const p of prices) await store.putPrice(q, namespace, p, at, 'event');
        await store.putSubscription(q, namespace, subscription, at, 'event');
      },
    };
  }
  if (kind === 'billing.meter') {
    const meter = fromStripeMeter(object as Stripe.Billing.Meter);
    return { table: 'stripe_meters', write: (q, at) => store.putMeter(q, namespace, meter, at, 'event') };
  }
  return undefined; // invoices are for the billing jobs; other objects are not tracked
}

function retrieve(stripe: Stripe, kind: string, id: string): Promise<unknown> {
  return withStripeBackoff<unknown>(() =>
    kind === 'customer'
      ? stripe.customers.retrieve(id)
      : kind === 'subscription'
        ? stripe.subscriptions.retrieve(id)
        : stripe.billing.meters.retrieve(id),
  );
}

/**
 * Applies one verified webhook event, once. A newer stored state wins over an older event; an
 * event from the same second as the stored state cannot be ordered, so the object is re-fetched.
 * The re-fetch happens outside any transaction (a slow Stripe must not hold a connection and the
 * object's lock), and the comparison is then made again under the lock.
 * Returns what happened, for the log and the tests.
 */
export async function applyStripeEvent(
  stripe: Stripe,
  store: StripeStore,
  namespace: string,
  event: Stripe.Event,
  logger: Logger,
): Promise<'applied' | 'duplicate' | 'stale' | 'ignored'> {
  const object = event.data.object as { id: string; object: string };
  const fromEvent = tracked(store, namespace, object, event.type === 'customer.deleted');
  if (!fromEvent) {
    const claimed = await store.inTransaction((q) => store.claimEvent(q, namespace, event));
    return claimed ? 'ignored' : 'duplicate';
  }
  const at = new Date(event.created * 1000);
  let fetched: Tracked | undefined;
  for (;;) {
    const current = fetched;
    const outcome = await store.inTransaction(async (q) => {
      await store.lockObject(q, namespace, object.id);
      // A redelivery is answered from the ledger, without asking Stripe even on a same-second tie.
      if (await store.eventSeen(q, namespace, event.id)) return 'duplicate';
      const stored = await store.sourceAt(q, fromEvent.table, namespace, object.id);
      // Asked before the claim, so that this transaction commits nothing and the retry claims.
      if (stored?.getTime() === at.getTime() && !current) return 'refetch';
      if (!(await store.claimEvent(q, namespace, event))) return 'duplicate';
      if (stored && stored.getTime() > at.getTime()) return 'stale';
      await (current ?? fromEvent).write(q, at);
      return 'applied';
    });
    if (outcome !== 'refetch') return outcome;
    logger.debug({ event: event.id, object: object.id }, 'same-second update: re-fetching from Stripe');
    fetched = tracked(store, namespace, await retrieve(stripe, object.object, object.id), false);
    if (!fetched) throw new Error(`Stripe answered ${object.id} with an object the mirror does not track`);
  }
}
