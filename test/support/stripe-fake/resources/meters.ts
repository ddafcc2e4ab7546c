import type Stripe from 'stripe';
import { DAY, HOUR, MINUTE } from '../clock.ts';
import { invalidParam, invalidRequest, noSuch } from '../errors.ts';
import { newId } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';
import { aggregate, countedEvents } from '../usage.ts';
import { requireCustomer } from './customers.ts';

export function requireMeter(store: Store, id: string, param?: string): Stripe.Billing.Meter {
  const meter = store.meters.get(id);
  if (!meter) throw noSuch('billing.meter', id, param);
  return meter;
}

function activeMeterFor(store: Store, eventName: string, except?: string) {
  return [...store.meters.values()].find(
    (m) => m.event_name === eventName && m.status === 'active' && m.id !== except,
  );
}

function create({ store, p }: HandlerContext): Stripe.Billing.Meter {
  p.only(
    'display_name',
    'event_name',
    'default_aggregation',
    'customer_mapping',
    'value_settings',
    'event_time_window',
  );
  const displayName = p.reqStr('display_name');
  const eventName = p.reqStr('event_name');
  const agg = p.reqObj('default_aggregation');
  agg.only('formula');
  const formula = agg.enumOf('formula', ['sum', 'count', 'last'] as const);
  if (!formula)
    throw invalidRequest('Missing required param: default_aggregation[formula].', {
      param: 'default_aggregation[formula]',
    });
  const mapping = p.obj('customer_mapping');
  mapping?.only('event_payload_key', 'type');
  const valueSettings = p.obj('value_settings');
  valueSettings?.only('event_payload_key');
  const window = p.enumOf('event_time_window', ['hour', 'day'] as const);
  // One active meter per event name, so that a meter event maps to exactly one meter.
  if (activeMeterFor(store, eventName)) {
    throw invalidParam('event_name', `An active meter with event_name '${eventName}' already exists.`);
  }
  const now = store.now();
  const meter: Stripe.Billing.Meter = {
    id: newId('mtr_test', 32),
    object: 'billing.meter',
    created: now,
    customer_mapping: {
      event_payload_key: mapping?.str('event_payload_key') ?? 'stripe_customer_id',
      type: 'by_id',
    },
    default_aggregation: { formula },
    display_name: displayName,
    event_name: eventName,
    event_time_window: window ?? null,
    livemode: false,
    status: 'active',
    status_transitions: { deactivated_at: null },
    updated: now,
    value_settings: { event_payload_key: valueSettings?.str('event_payload_key') ?? 'value' },
  };
  store.meters.set(meter.id, meter);
  store.emit('billing.meter.created', meter);
  return meter;
}

function update({ store, p, params }: HandlerContext): Stripe.Billing.Meter {
  p.only('display_name');
  const meter = requireMeter(store, params.id as string);
  const before = snapshot(meter);
  if (p.has('display_name')) meter.display_name = p.reqStr('display_name');
  meter.updated = store.now();
  const previous = changedFields(before, meter);
  if (previous) store.emit('billing.meter.updated', meter, previous);
  return meter;
}

function setStatus(ctx: HandlerContext, active: boolean): Stripe.Billing.Meter {
  ctx.p.only();
  const { store } = ctx;
  const meter = requireMeter(store, ctx.params.id as string);
  if (active && meter.status === 'active') throw invalidRequest('This meter is already active.');
  if (!active && meter.status !== 'active') throw invalidRequest('This meter is already inactive.');
  if (active && activeMeterFor(store, meter.event_name, meter.id)) {
    throw invalidRequest(`An active meter with event_name '${meter.event_name}' already exists.`);
  }
  meter.status = active ? 'active' : 'inactive';
  meter.status_transitions = { deactivated_at: active ? null : store.now() };
  meter.updated = store.now();
  store.emit(active ? 'billing.meter.reactivated' : 'billing.meter.deactivated', meter);
  return meter;
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'status');
  const status = p.enumOf('status', ['active', 'inactive'] as const);
  return paginate(
    newestFirst(store.meters.values()).filter((m) => !status || m.status === status),
    p,
    '/v1/billing/meters',
  );
}

/**
 * Aggregates over [start_time, end_time), both minute-aligned; with value_grouping_window one summary per
 * hour or UTC day that has events (bounds aligned to that window). Without grouping, one summary always.
 */
function eventSummaries({ store, settings, p, params }: HandlerContext) {
  p.only(
    'customer',
    'start_time',
    'end_time',
    'value_grouping_window',
    'limit',
    'starting_after',
    'ending_before',
  );
  const meter = requireMeter(store, params.id as string);
  const customer = p.reqStr('customer');
  requireCustomer(store, customer, 'customer');
  const start = p.reqInt('start_time');
  const end = p.reqInt('end_time');
  const grouping = p.enumOf('value_grouping_window', ['hour', 'day'] as const);
  const align = grouping === 'day' ? DAY : grouping === 'hour' ? HOUR : MINUTE;
  const unit = grouping === 'day' ? 'UTC day' : grouping === 'hour' ? 'hour' : 'minute';
  for (const [param, t] of [
    ['start_time', start],
    ['end_time', end],
  ] as const) {
    if (t % align !== 0) throw invalidParam(param, `${param} must be aligned with ${unit} boundaries.`);
  }
  if (end <= start) throw invalidParam('end_time', 'end_time must be after start_time.');
  const asOf = store.now() - settings.summaryLagSeconds;
  const summaries: Stripe.Billing.MeterEventSummary[] = [];
  const windows: Array<[number, number]> = [];
  if (grouping) for (let w = start; w < end; w += align) windows.push([w, Math.min(w + align, end)]);
  else windows.push([start, end]);
  for (const [ws, we] of windows) {
    const q = { meterId: meter.id, customer, start: ws, end: we, asOf };
    if (grouping && countedEvents(store, q).length === 0) continue;
    summaries.push({
      id: `mtrusg_test_${Buffer.from(`${meter.id}|${customer}|${ws}|${we}`).toString('base64url')}`,
      object: 'billing.meter_event_summary',
      aggregated_value: aggregate(store, q).toNumber(),
      end_time: we,
      livemode: false,
      meter: meter.id,
      start_time: ws,
    });
  }
  return paginate(summaries.reverse(), p, `/v1/billing/meters/${meter.id}/event_summaries`);
}

export const meterRoutes: Route[] = [
  route('POST', '/v1/billing/meters', 'billing_meters', create),
  route('GET', '/v1/billing/meters', 'billing_meters', list),
  route('GET', '/v1/billing/meters/:id', 'billing_meters', ({ store, params }) =>
    requireMeter(store, params.id as string),
  ),
  route('POST', '/v1/billing/meters/:id', 'billing_meters', update),
  route('POST', '/v1/billing/meters/:id/deactivate', 'billing_meters', (ctx) => setStatus(ctx, false)),
  route('POST', '/v1/billing/meters/:id/reactivate', 'billing_meters', (ctx) => setStatus(ctx, true)),
  route('GET', '/v1/billing/meters/:id/event_summaries', 'billing_meters', eventSummaries),
];
