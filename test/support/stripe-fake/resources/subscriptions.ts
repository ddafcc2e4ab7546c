import type Stripe from 'stripe';
import { invalidParam, invalidRequest, noSuch } from '../errors.ts';
import type { ParamReader } from '../form.ts';
import { newId } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { type HandlerContext, type Route, route } from '../router.ts';
import { type LineSpec, type Store, type SubscriptionState, snapshot } from '../store.ts';
import { requireCustomer } from './customers.ts';
import { planOf, requirePrice } from './prices.ts';

export function requireSubscription(store: Store, id: string, param?: string): Stripe.Subscription {
  const sub = store.subscriptions.get(id);
  if (!sub) throw noSuch('subscription', id, param);
  return sub;
}

/** Params that Stripe takes and that change nothing the fake models; accepted so clients need not strip them. */
const ACCEPTED_NOOP = ['payment_behavior', 'off_session', 'default_payment_method', 'collection_method'];

function recurringPrice(store: Store, item: ParamReader, param: string): Stripe.Price {
  const price = requirePrice(store, item.reqStr('price'), `${param}[price]`);
  if (!price.recurring) {
    throw invalidParam(`${param}[price]`, `The price specified (${price.id}) is not recurring.`);
  }
  if (!price.active) throw invalidParam(`${param}[price]`, `The price specified (${price.id}) is inactive.`);
  return price;
}

function newItem(
  ctx: HandlerContext,
  sub: { id: string; interval?: string; currency?: string },
  item: ParamReader,
  index: number,
  param = 'items',
): Stripe.SubscriptionItem {
  item.only('price', 'quantity', 'metadata');
  const price = recurringPrice(ctx.store, item, `${param}[${index}]`);
  const quantity = item.int('quantity');
  if (price.recurring?.usage_type === 'metered' && quantity !== undefined) {
    throw invalidParam(
      `${param}[${index}][quantity]`,
      'Quantity should not be specified where usage_type is `metered`. Remove quantity from `items`.',
    );
  }
  const created = ctx.store.now();
  const si: Stripe.SubscriptionItem = {
    id: newId('si', 14),
    object: 'subscription_item',
    billing_thresholds: null,
    created,
    current_period_end: created,
    current_period_start: created,
    current_trial: null,
    discounts: [],
    metadata: item.metadata(),
    plan: planOf(price),
    // The stored price object itself, so that later price updates show on the item as they do on Stripe.
    price,
    subscription: sub.id,
    tax_rates: [],
  };
  if (price.recurring?.usage_type !== 'metered') si.quantity = quantity ?? 1;
  return si;
}

function create(ctx: HandlerContext): Stripe.Subscription {
  const { store, billing, p } = ctx;
  p.only(
    'customer',
    'items',
    'metadata',
    'description',
    'billing_cycle_anchor',
    'backdate_start_date',
    'cancel_at_period_end',
    'proration_behavior',
    ...ACCEPTED_NOOP,
  );
  const customer = requireCustomer(store, p.reqStr('customer'), 'customer');
  const itemParams = p.arr('items') ?? [];
  if (itemParams.length === 0) throw invalidRequest('Missing required param: items.', { param: 'items' });
  const now = store.now();
  const id = newId('sub', 24);
  const items = itemParams.map((item, i) => newItem(ctx, { id }, item, i));
  const first = items[0] as Stripe.SubscriptionItem;
  const recurring = first.price.recurring as Stripe.Price.Recurring;
  for (const [i, item] of items.entries()) {
    const r = item.price.recurring as Stripe.Price.Recurring;
    if (r.interval !== recurring.interval || r.interval_count !== recurring.interval_count) {
      throw invalidParam(
        `items[${i}][price]`,
        'All prices on a subscription must have the same recurring interval.',
      );
    }
    if (item.price.currency !== first.price.currency) {
      throw invalidParam(`items[${i}][price]`, 'All prices on a subscription must have the same currency.');
    }
  }
  const backdate = p.int('backdate_start_date');
  const anchorParam = p.int('billing_cycle_anchor');
  if (backdate !== undefined && backdate > now) {
    throw invalidParam('backdate_start_date', 'backdate_start_date must be in the past.');
  }
  if (anchorParam !== undefined && anchorParam < now) {
    throw invalidParam('billing_cycle_anchor', 'billing_cycle_anchor cannot be in the past.');
  }
  const start = backdate ?? now;
  const state: SubscriptionState = {
    anchor: anchorParam ?? start,
    start,
    interval: recurring.interval as SubscriptionState['interval'],
    intervalCount: recurring.interval_count,
    period: 0,
  };
  state.period = billing.periodIndexAt(state, now);
  store.subscriptionState.set(id, state);
  for (const item of items) store.itemState.set(item.id, { usageSince: start });
  const sub: Stripe.Subscription = {
    id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: state.anchor,
    billing_cycle_anchor_config: null,
    billing_mode: { type: 'flexible', flexible: { proration_discounts: 'included' }, updated_at: now },
    billing_schedules: [],
    billing_thresholds: null,
    cancel_at: null,
    cancel_at_period_end: p.bool('cancel_at_period_end') ?? false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, feedback_option: null, reason: null },
    collection_method: 'charge_automatically',
    created: now,
    currency: first.price.currency,
    customer: customer.id,
    customer_account: null,
    days_until_due: null,
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: p.str('description') ?? null,
    discounts: [],
    ended_at: null,
    invoice_settings: {
      account_tax_ids: null,
      custom_fields: null,
      description: null,
      footer: null,
      issuer: { type: 'self' },
    },
    items: { object: 'list', data: items, has_more: false, url: `/v1/subscription_items?subscription=${id}` },
    latest_invoice: null,
    livemode: false,
    managed_payments: null,
    metadata: p.metadata(),
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: null,
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: start,
    status: 'active',
    test_clock: null,
    transfer_data: null,
    trial_end: null,
    trial_settings: null,
    trial_start: null,
  };
  store.subscriptions.set(id, sub);
  billing.syncItemPeriods(sub);
  store.emit('customer.subscription.created', sub);
  // The first invoice bills licensed prices in advance and is finalized at once; metered usage comes
  // on the renewal invoices.
  const { start: periodStart, end: periodEnd } = billing.period(id);
  const lines: LineSpec[] = items
    .filter((item) => item.price.recurring?.usage_type !== 'metered')
    .map((item) => ({
      kind: 'licensed',
      lineId: newId('il', 24),
      itemId: item.id,
      subscription: id,
      priceId: item.price.id,
      quantity: item.quantity ?? 1,
      start: periodStart,
      end: periodEnd,
    }));
  const invoice = billing.createInvoice({
    customer: customer.id,
    subscription: sub,
    billingReason: 'subscription_create',
    periodStart: now,
    periodEnd: now,
    lines,
    pendingItems: true,
    finalizeNow: true,
  });
  sub.latest_invoice = invoice.id;
  return sub;
}

function update(ctx: HandlerContext): Stripe.Subscription {
  const { store, billing, p, params } = ctx;
  p.only('items', 'metadata', 'description', 'cancel_at_period_end', 'proration_behavior', ...ACCEPTED_NOOP);
  const sub = requireSubscription(store, params.id as string);
  if (sub.status === 'canceled') {
    throw invalidRequest('A canceled subscription can only update its cancellation_details and metadata.', {
      param: 'items',
    });
  }
  const before = snapshot(sub);
  const prorate =
    (p.enumOf('proration_behavior', ['create_prorations', 'none', 'always_invoice'] as const) ??
      'create_prorations') !== 'none';
  const now = store.now();
  const recurring = sub.items.data[0]?.price.recurring;
  const itemParams = p.arr('items') ?? [];
  // Validate every item before changing any: Stripe applies an update whole or not at all.
  const plan = itemParams.map((ip, i) => {
    ip.only('id', 'price', 'quantity', 'metadata', 'deleted');
    const itemId = ip.str('id');
    const item = itemId ? sub.items.data.find((x) => x.id === itemId) : undefined;
    if (itemId && !item) throw noSuch('subscription_item', itemId, `items[${i}][id]`);
    const price = ip.has('price') || !item ? recurringPrice(store, ip, `items[${i}]`) : undefined;
    const r = price?.recurring;
    if (
      r &&
      recurring &&
      (r.interval !== recurring.interval || r.interval_count !== recurring.interval_count)
    ) {
      throw invalidParam(
        `items[${i}][price]`,
        'All prices on a subscription must have the same recurring interval.',
      );
    }
    const meteredAfter = (price ?? item?.price)?.recurring?.usage_type === 'metered';
    if (ip.has('quantity') && meteredAfter) {
      throw invalidParam(
        `items[${i}][quantity]`,
        'Quantity should not be specified where usage_type is `metered`.',
      );
    }
    return { ip, i, item, price, deleted: ip.bool('deleted') ?? false };
  });
  const remaining =
    sub.items.data.length -
    plan.filter((x) => x.item && x.deleted).length +
    plan.filter((x) => !x.item).length;
  if (remaining === 0) throw invalidRequest('A subscription must have at least one active item.');
  for (const { ip, i, item, price, deleted } of plan) {
    if (!item) {
      const added = newItem(ctx, sub, ip, i);
      sub.items.data.push(added);
      store.itemState.set(added.id, { usageSince: now });
      continue;
    }
    const metered = item.price.recurring?.usage_type === 'metered';
    if (deleted) {
      if (metered && prorate) billing.billUsageToDate(sub, item);
      sub.items.data.splice(sub.items.data.indexOf(item), 1);
      store.itemState.delete(item.id);
      continue;
    }
    if (price && price.id !== item.price.id) {
      if (metered && prorate) billing.billUsageToDate(sub, item);
      item.price = price;
      item.plan = planOf(price);
      // Usage under the new price counts from the change (billing_mode=flexible).
      store.itemState.set(item.id, { usageSince: now });
      if (price.recurring?.usage_type === 'metered') delete item.quantity;
      else item.quantity = item.quantity ?? 1;
    }
    if (ip.has('quantity')) item.quantity = ip.int('quantity') ?? 1;
    item.metadata = ip.metadata(item.metadata);
  }
  if (p.has('cancel_at_period_end')) {
    sub.cancel_at_period_end = p.bool('cancel_at_period_end') ?? false;
    sub.cancel_at = sub.cancel_at_period_end ? billing.period(sub.id).end : null;
    sub.canceled_at = sub.cancel_at_period_end ? now : null;
  }
  if (p.has('description')) sub.description = p.str('description') || null;
  sub.metadata = p.metadata(sub.metadata);
  billing.syncItemPeriods(sub);
  const previous: Record<string, unknown> = {};
  for (const key of Object.keys(before) as Array<keyof Stripe.Subscription>) {
    if (JSON.stringify(before[key]) !== JSON.stringify(sub[key])) previous[key] = before[key];
  }
  if (Object.keys(previous).length > 0) store.emit('customer.subscription.updated', sub, previous);
  return sub;
}

function cancel({ store, billing, p, params }: HandlerContext): Stripe.Subscription {
  p.only('invoice_now', 'prorate', 'cancellation_details');
  const sub = requireSubscription(store, params.id as string);
  if (sub.status === 'canceled') {
    throw invalidRequest(`No such subscription: '${sub.id}'`, {
      code: 'resource_missing',
      param: 'id',
      status: 404,
    });
  }
  const details = p.obj('cancellation_details');
  details?.only('comment', 'feedback');
  if (details) {
    sub.cancellation_details = {
      comment: details.str('comment') ?? null,
      feedback: (details.str('feedback') as Stripe.Subscription.CancellationDetails.Feedback) ?? null,
      feedback_option: null,
      reason: 'cancellation_requested',
    };
  } else if (sub.cancellation_details) {
    sub.cancellation_details.reason = 'cancellation_requested';
  }
  billing.cancelNow(sub, { invoiceNow: p.bool('invoice_now') ?? false, prorate: p.bool('prorate') ?? false });
  return sub;
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'customer', 'status', 'price');
  const customer = p.str('customer');
  const status = p.str('status');
  const price = p.str('price');
  const all = newestFirst(store.subscriptions.values()).filter(
    (s) =>
      (!customer || s.customer === customer) &&
      // Stripe's default lists every subscription that is not canceled.
      (status === 'all' || (status ? s.status === status : s.status !== 'canceled')) &&
      (!price || s.items.data.some((i) => i.price.id === price)),
  );
  return paginate(all, p, '/v1/subscriptions');
}

function retrieveItem({ store, params }: HandlerContext): Stripe.SubscriptionItem {
  for (const sub of store.subscriptions.values()) {
    const item = sub.items.data.find((i) => i.id === params.id);
    if (item) return item;
  }
  throw noSuch('subscription_item', params.id as string);
}

function listItems({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'subscription');
  const sub = requireSubscription(store, p.reqStr('subscription'), 'subscription');
  return paginate([...sub.items.data], p, `/v1/subscription_items?subscription=${sub.id}`);
}

export const subscriptionRoutes: Route[] = [
  route('POST', '/v1/subscriptions', 'subscriptions', create),
  route('GET', '/v1/subscriptions', 'subscriptions', list),
  route('GET', '/v1/subscriptions/:id', 'subscriptions', ({ store, params }) =>
    requireSubscription(store, params.id as string),
  ),
  route('POST', '/v1/subscriptions/:id', 'subscriptions', update),
  route('DELETE', '/v1/subscriptions/:id', 'subscriptions', cancel),
  route('GET', '/v1/subscription_items', 'subscriptions', listItems),
  route('GET', '/v1/subscription_items/:id', 'subscriptions', retrieveItem),
];
