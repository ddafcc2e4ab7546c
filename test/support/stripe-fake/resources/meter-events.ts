import type Stripe from 'stripe';
import { DAY, MINUTE } from '../clock.ts';
import { invalidParam, invalidRequest, lockTimeout, missingParam } from '../errors.ts';
import { randomToken } from '../ids.ts';
import { type HandlerContext, type Route, route } from '../router.ts';

// "One concurrent call per customer per meter": a second call for the same pair while one is running
// gets 429 lock_timeout rather than waiting.
const locks = new WeakMap<object, Set<string>>();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function create(ctx: HandlerContext): Promise<Stripe.Billing.MeterEvent> {
  const { store, settings, p, faults } = ctx;
  p.only('event_name', 'payload', 'identifier', 'timestamp');
  const eventName = p.reqStr('event_name');
  const payload = p.strMap('payload');
  if (!payload) throw missingParam('payload');
  const now = store.now();
  const timestamp = p.int('timestamp') ?? now;
  const earliest = now - 35 * DAY;
  const latest = now + 5 * MINUTE;
  if (timestamp < earliest) {
    throw invalidParam(
      'timestamp',
      `The event timestamp cannot be more than 35 days in past. Expected a timestamp greater than or equal to ${earliest}.`,
    );
  }
  if (timestamp > latest) {
    throw invalidParam(
      'timestamp',
      `The event timestamp cannot be more than 5 minutes in the future. Expected a timestamp less than or equal to ${latest}.`,
    );
  }
  const meters = [...store.meters.values()].filter((m) => m.event_name === eventName);
  const meter = meters.find((m) => m.status === 'active') ?? meters[0];
  if (!meter) throw invalidParam('event_name', `No active meter found for event_name '${eventName}'.`);
  const customerKey = meter.customer_mapping.event_payload_key;
  const customer = payload[customerKey];
  if (!customer) throw missingParam(`payload[${customerKey}]`);
  const valueKey = meter.value_settings.event_payload_key;
  let value = payload[valueKey];
  if (value === undefined) {
    if (meter.default_aggregation.formula !== 'count') throw missingParam(`payload[${valueKey}]`);
    value = '1';
  }
  // The usage guide: whole numbers, negatives allowed. Newer versions also take decimals (15 significant
  // digits), which the fake accepts only when configured to.
  const pattern = settings.meterEventValues === 'decimal' ? /^-?\d+(\.\d+)?$/ : /^-?\d+$/;
  const digits = value.replace(/^-/, '').replace('.', '').replace(/^0+/, '');
  if (!pattern.test(value) || digits.length > 15) {
    throw invalidParam(
      `payload[${valueKey}]`,
      settings.meterEventValues === 'decimal'
        ? `Invalid value '${value}' for payload key '${valueKey}': expected a number with at most 15 significant digits.`
        : `Invalid value '${value}' for payload key '${valueKey}': expected a whole number.`,
    );
  }
  const identifier = p.str('identifier') ?? `${randomToken(8)}-${randomToken(4)}-${randomToken(12)}`;
  if (identifier.length > 100) throw invalidParam('identifier', 'identifier must be at most 100 characters.');
  const duplicate = () => {
    const seen = store.identifiers.get(identifier);
    if (seen && seen.receivedAt + settings.identifierWindowSeconds > store.now()) {
      throw invalidRequest(`An event already exists with identifier ${identifier}.`);
    }
  };
  duplicate();

  let held = locks.get(store);
  if (!held) {
    held = new Set();
    locks.set(store, held);
  }
  const lockKey = `${meter.id}:${customer}`;
  if (held.has(lockKey)) throw lockTimeout();
  held.add(lockKey);
  try {
    if (faults.meterEventHoldMs > 0) await sleep(faults.meterEventHoldMs);
    duplicate();
    const event: Stripe.Billing.MeterEvent = {
      object: 'billing.meter_event',
      created: store.now(),
      event_name: eventName,
      identifier,
      livemode: false,
      payload,
      timestamp,
    };
    const record = {
      seq: store.nextSeq(),
      event,
      meterId: meter.id,
      customer,
      value,
      receivedAt: store.now(),
      canceledAt: null,
      rejected: false,
    };
    store.meterEvents.push(record);
    store.identifiers.set(identifier, record);
    // Stripe accepts these and reports them later (error_report_triggered); they never count.
    if (meter.status !== 'active') {
      store.meterErrorReports.push({
        code: 'archived_meter',
        message: `Meter ${meter.id} is inactive.`,
        identifier,
        event_name: eventName,
        at: store.now(),
      });
      record.rejected = true;
    } else if (!store.customers.has(customer)) {
      store.meterErrorReports.push({
        code: 'meter_event_customer_not_found',
        message: `No customer found with id '${customer}'.`,
        identifier,
        event_name: eventName,
        at: store.now(),
      });
      record.rejected = true;
    }
    return event;
  } finally {
    held.delete(lockKey);
  }
}

function adjust({ store, settings, p }: HandlerContext): Stripe.Billing.MeterEventAdjustment {
  p.only('event_name', 'type', 'cancel');
  const eventName = p.reqStr('event_name');
  const type = p.enumOf('type', ['cancel'] as const);
  if (!type) throw missingParam('type');
  const identifier = p.reqObj('cancel').only('identifier').reqStr('identifier');
  const record = store.identifiers.get(identifier);
  if (!record || record.event.event_name !== eventName) {
    throw invalidParam('cancel[identifier]', `No meter event found with identifier ${identifier}.`);
  }
  if (record.canceledAt !== null) {
    throw invalidParam(
      'cancel[identifier]',
      `The meter event with identifier ${identifier} is already canceled.`,
    );
  }
  if (store.now() - record.receivedAt > settings.adjustmentWindowSeconds) {
    throw invalidParam(
      'cancel[identifier]',
      `The meter event with identifier ${identifier} can no longer be canceled: events can only be canceled within 24 hours of being received.`,
    );
  }
  record.canceledAt = store.now();
  const adjustment: Stripe.Billing.MeterEventAdjustment = {
    object: 'billing.meter_event_adjustment',
    cancel: { identifier },
    event_name: eventName,
    livemode: false,
    // Stripe processes adjustments asynchronously and answers `pending`; the fake applies them at once.
    status: 'pending',
    type: 'cancel',
  };
  store.adjustments.push({ adjustment, at: store.now() });
  return adjustment;
}

export const meterEventRoutes: Route[] = [
  route('POST', '/v1/billing/meter_events', 'meter_events', create, { rateClass: 'meter_events' }),
  route('POST', '/v1/billing/meter_event_adjustments', 'meter_events', adjust),
];
