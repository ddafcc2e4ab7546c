import Stripe from 'stripe';
import { DAY, HOUR } from './clock.ts';
import type { MeterEventRecord, Store } from './store.ts';

export type Decimal = Stripe.Decimal;
export const dec = (v: string | number | bigint): Decimal => Stripe.Decimal.from(v);
export const ZERO = dec(0);

export interface UsageQuery {
  meterId: string;
  customer: string;
  /** Event timestamps in [start, end). */
  start: number;
  end: number;
  /** Only events received, and cancellations made, at or before this time count. */
  asOf: number;
}

/** The events that count for a query, after cancellations and the meter's event_time_window. */
export function countedEvents(store: Store, q: UsageQuery): MeterEventRecord[] {
  const meter = store.meters.get(q.meterId);
  const events = store.meterEvents.filter(
    (r) =>
      !r.rejected &&
      r.meterId === q.meterId &&
      r.customer === q.customer &&
      r.event.timestamp >= q.start &&
      r.event.timestamp < q.end &&
      r.receivedAt <= q.asOf &&
      (r.canceledAt === null || r.canceledAt > q.asOf),
  );
  const window = meter?.event_time_window;
  if (window !== 'hour' && window !== 'day') return events;
  // Set semantics: per window only the latest event stands (latest timestamp, then latest received).
  const size = window === 'hour' ? HOUR : DAY;
  const latest = new Map<number, MeterEventRecord>();
  for (const r of events) {
    const w = Math.floor(r.event.timestamp / size) * size;
    const held = latest.get(w);
    if (!held || isLater(r, held)) latest.set(w, r);
  }
  return [...latest.values()].sort((a, b) => a.seq - b.seq);
}

function isLater(a: MeterEventRecord, b: MeterEventRecord): boolean {
  return a.event.timestamp !== b.event.timestamp ? a.event.timestamp > b.event.timestamp : a.seq > b.seq;
}

/** The meter's aggregate (sum | count | last) over the query; zero when no event counts. */
export function aggregate(store: Store, q: UsageQuery): Decimal {
  const meter = store.meters.get(q.meterId);
  const events = countedEvents(store, q);
  const formula = meter?.default_aggregation.formula ?? 'sum';
  if (formula === 'count') return dec(events.length);
  if (formula === 'last') {
    let last: MeterEventRecord | undefined;
    for (const r of events) if (!last || isLater(r, last)) last = r;
    return last ? dec(last.value) : ZERO;
  }
  return events.reduce((acc, r) => acc.add(dec(r.value)), ZERO);
}
