import { IANAZone } from 'luxon';
import { decimalFromText, toDecimalText } from '../../src/events/decimal.ts';

/**
 * An in-memory reference for usage queries, written independently of src/meters (only the numeric
 * policy, src/events/decimal.ts, is shared, since it is the specification of how a number is read).
 * Every aggregate is computed exactly, in BigInt units of 1e-9, and turned into a double once.
 */

export type RefAggregation = 'SUM' | 'COUNT' | 'UNIQUE_COUNT' | 'AVG' | 'MIN' | 'MAX' | 'LATEST';
export type RefWindowSize = 'MINUTE' | 'HOUR' | 'DAY' | 'MONTH';

/** An event as the client sent it (one namespace). */
export type RefEvent = {
  id: string;
  source: string;
  type: string;
  subject: string;
  /** Milliseconds since the epoch. */
  time: number;
  data: Record<string, unknown> | null;
};

export type RefMeter = {
  aggregation: RefAggregation;
  eventType: string;
  valueProperty?: string;
  groupBy: Record<string, string>;
  /** Milliseconds since the epoch. */
  eventFrom?: number;
};

export type RefQuery = {
  from: number;
  to: number;
  windowSize?: RefWindowSize;
  timeZone: string;
  subjects?: string[];
  groupBy: string[];
  filterGroupBy?: Record<string, string[]>;
};

export type RefRow = {
  value: number;
  windowStart: string;
  windowEnd: string;
  subject: string | null;
  groupBy: Record<string, string | null>;
};

/** The stored events: one per (source, id), the first copy sent wins; later copies are ignored. */
export function storedEvents(sentInOrder: readonly RefEvent[]): RefEvent[] {
  const kept = new Map<string, RefEvent>();
  for (const event of sentInOrder) {
    const key = JSON.stringify([event.source, event.id]);
    // A JSON round trip, as the server sees the data (-0 becomes 0, undefined keys vanish).
    if (!kept.has(key)) kept.set(key, { ...event, data: JSON.parse(JSON.stringify(event.data)) });
  }
  return [...kept.values()];
}

const SEGMENT = /^\.([A-Za-z_$][\w$-]*)|^\['((?:[^'\\]|\\.)*)'\]/;

/** Keys of a simple JSONPath: $.a.b or $['odd key'].c. */
export function pathKeys(path: string): string[] {
  if (!path.startsWith('$')) throw new Error(`unsupported path ${path}`);
  let rest = path.slice(1);
  const keys: string[] = [];
  while (rest.length > 0) {
    const match = SEGMENT.exec(rest);
    if (!match) throw new Error(`unsupported path ${path}`);
    keys.push(match[1] ?? (match[2] ?? '').replace(/\\(.)/g, '$1'));
    rest = rest.slice(match[0].length);
  }
  return keys;
}

/** What sits at a path: absent (missing, or an object or array rather than one value), or a leaf. */
type Leaf =
  | { present: false }
  | { present: true; isNull: boolean; text: string; decimal: string | null; isNumber: boolean };

function leafAt(data: Record<string, unknown> | null, path: string): Leaf {
  let node: unknown = data;
  for (const key of pathKeys(path)) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) {
      return { present: false };
    }
    node = (node as Record<string, unknown>)[key];
  }
  if (node === null) return { present: true, isNull: true, text: '', decimal: null, isNumber: false };
  switch (typeof node) {
    case 'number': {
      const decimal = Number.isFinite(node) ? toDecimalText(node) : null;
      return { present: true, isNull: false, text: String(node), decimal, isNumber: decimal !== null };
    }
    case 'string': {
      // Numeric strings count as numbers (OpenMeter); longer than 64 characters is text.
      const decimal = node.length <= 64 ? decimalFromText(node.trim()) : null;
      return { present: true, isNull: false, text: node, decimal, isNumber: decimal !== null };
    }
    case 'boolean':
      return { present: true, isNull: false, text: String(node), decimal: null, isNumber: false };
    default:
      return { present: false };
  }
}

const UNIT = 1_000_000_000n;

/** Decimal text with at most 9 fraction digits, as an exact count of 1e-9 units. */
export function toUnits(text: string): bigint {
  const negative = text.startsWith('-');
  const [int = '0', frac = ''] = (negative ? text.slice(1) : text).split('.');
  if (frac.length > 9) throw new Error(`more than 9 fraction digits: ${text}`);
  const units = BigInt(int) * UNIT + BigInt(frac.padEnd(9, '0'));
  return negative ? -units : units;
}

/** Exact decimal text of a count of 1e-9 units. */
export function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const fraction = (abs % UNIT).toString().padStart(9, '0').replace(/0+$/, '');
  const body = fraction ? `${abs / UNIT}.${fraction}` : `${abs / UNIT}`;
  return negative ? `-${body}` : body;
}

/** ClickHouse compares strings byte by byte (UTF-8); nulls sort last. */
function compareText(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const MINUTE_MS = 60_000;
const FIXED_UNIT_MS = { MINUTE: MINUTE_MS, HOUR: 60 * MINUTE_MS, DAY: 24 * 60 * MINUTE_MS } as const;

/** UTC offsets (ms) the zone uses around `time`: enough to find every instant a nearby wall clock shows. */
function offsetsNear(zone: IANAZone, time: number): number[] {
  const days = [-200, -40, -2, -1, 0, 1, 2, 40, 200];
  return [...new Set(days.map((d) => zone.offset(time + d * FIXED_UNIT_MS.DAY) * MINUTE_MS))];
}

/** The wall-clock start (as UTC-based ms) of the unit holding `wall`, moved by `step` units. */
function wallUnitStart(wall: number, size: RefWindowSize, step: number): number {
  if (size === 'MONTH') {
    const date = new Date(wall);
    return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + step, 1);
  }
  const unit = FIXED_UNIT_MS[size];
  return Math.floor(wall / unit) * unit + step * unit;
}

/**
 * The local calendar window holding `time`. A window starts wherever the local clock reads the start
 * of a minute, hour, day or month, and wherever the clock jumps over that start into the unit (a
 * skipped start); it ends where the next one starts. So windows never overlap and cover all time:
 * - a DST day lasts 23 or 25 hours (midnight is read once);
 * - America/New_York's repeated 01:00 hour in November makes two hour windows (01:00 is read twice);
 * - Australia/Lord_Howe's clock jumps from 02:00 to 02:30 in October, so its hour 02 window is
 *   02:30-03:00, half an hour; in April it goes back from 02:00 to 01:30, so the hour 01 window
 *   runs from 01:00 through the repeated half hour, 90 minutes.
 * Independent of luxon's startOf, which in Australia/Lord_Howe can return a start whose hour ends
 * before the event.
 */
export function windowOf(time: number, size: RefWindowSize, zoneName: string): [number, number] {
  const zone = IANAZone.create(zoneName);
  if (!zone.isValid) throw new Error(`unknown time zone ${zoneName}`);
  const offsetAt = (instant: number) => zone.offset(instant) * MINUTE_MS;
  const offsets = offsetsNear(zone, time);
  // Every unit start the clock shows near `time`, read with each offset the zone uses (in a repeated
  // hour the clock shows the same minutes twice, an offset apart).
  const labels = new Set(
    offsets.flatMap((offset) =>
      [-3, -2, -1, 0, 1, 2, 3].map((step) => wallUnitStart(time + offset, size, step)),
    ),
  );
  const boundaries: number[] = [];
  for (const label of labels) {
    const instants = offsets.map((offset) => label - offset).filter((i) => offsetAt(i) === label - i);
    if (instants.length > 0) boundaries.push(...instants);
    else {
      // The clock skips `label`: the unit starts at the jump, the first instant whose clock is past it.
      let lo = label - Math.max(...offsets);
      let hi = label - Math.min(...offsets);
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (mid + offsetAt(mid) >= label) hi = mid;
        else lo = mid;
      }
      boundaries.push(hi);
    }
  }
  const before = boundaries.filter((b) => b <= time);
  const after = boundaries.filter((b) => b > time);
  if (before.length === 0 || after.length === 0) throw new Error(`no ${size} window found for ${time}`);
  return [Math.max(...before), Math.min(...after)];
}

type Group = {
  start: number;
  end: number;
  subject: string | null;
  keys: (string | null)[];
  events: { event: RefEvent; leaf: Leaf }[];
};

/** The rows a usage query must answer, in the order it must answer them. */
export function referenceUsage(stored: readonly RefEvent[], meter: RefMeter, query: RefQuery): RefRow[] {
  const groupKeys = query.groupBy.filter((key) => key !== 'subject');
  // As in OpenMeter, a subject filter also groups by subject.
  const bySubject = query.groupBy.includes('subject') || (query.subjects?.length ?? 0) > 0;
  const groupPath = (key: string) => {
    const path = meter.groupBy[key];
    if (path === undefined) throw new Error(`meter has no group-by ${key}`);
    return path;
  };
  const groups = new Map<string, Group>();

  for (const event of stored) {
    if (event.type !== meter.eventType) continue;
    if (event.time < query.from || event.time >= query.to) continue;
    if (meter.eventFrom !== undefined && event.time < meter.eventFrom) continue;
    if (query.subjects && query.subjects.length > 0 && !query.subjects.includes(event.subject)) continue;
    const filtered = Object.entries(query.filterGroupBy ?? {}).every(([key, values]) => {
      const leaf = leafAt(event.data, groupPath(key));
      return leaf.present && values.includes(leaf.text);
    });
    if (!filtered) continue;

    const leaf: Leaf = meter.valueProperty ? leafAt(event.data, meter.valueProperty) : { present: false };
    switch (meter.aggregation) {
      case 'COUNT':
        break;
      case 'UNIQUE_COUNT':
        if (!leaf.present || leaf.isNull) continue;
        break;
      default:
        if (!leaf.present || !leaf.isNumber) continue;
    }

    const [start, end] = query.windowSize
      ? windowOf(event.time, query.windowSize, query.timeZone)
      : [query.from, query.to];
    if (event.time < start || event.time >= end) {
      throw new Error(`reference: event at ${event.time} falls outside its window [${start}, ${end})`);
    }
    const subject = bySubject ? event.subject : null;
    // A group-by value that is missing or JSON null is null (not the empty string).
    const keys = groupKeys.map((key) => {
      const at = leafAt(event.data, groupPath(key));
      return at.present && !at.isNull ? at.text : null;
    });
    const id = JSON.stringify([start, subject, keys]);
    let group = groups.get(id);
    if (!group) {
      group = { start, end, subject, keys, events: [] };
      groups.set(id, group);
    }
    group.events.push({ event, leaf });
  }

  const sorted = [...groups.values()].sort((a, b) => {
    if (a.start !== b.start) return a.start - b.start;
    const bySubjectOrder = compareText(a.subject, b.subject);
    if (bySubjectOrder !== 0) return bySubjectOrder;
    for (let i = 0; i < a.keys.length; i++) {
      const order = compareText(a.keys[i] ?? null, b.keys[i] ?? null);
      if (order !== 0) return order;
    }
    return 0;
  });

  return sorted.map((group) => ({
    value: aggregate(meter.aggregation, group.events),
    windowStart: new Date(group.start).toISOString(),
    windowEnd: new Date(group.end).toISOString(),
    subject: group.subject,
    groupBy: Object.fromEntries(groupKeys.map((key, i) => [key, group.keys[i] ?? null])),
  }));
}

function aggregate(aggregation: RefAggregation, events: Group['events']): number {
  if (aggregation === 'COUNT') return events.length;
  if (aggregation === 'UNIQUE_COUNT') {
    return new Set(events.map(({ leaf }) => (leaf.present ? leaf.text : ''))).size;
  }
  const units = events.map(({ leaf }) => {
    if (!leaf.present || leaf.decimal === null) throw new Error('reference: a counted event has no number');
    return toUnits(leaf.decimal);
  });
  switch (aggregation) {
    case 'SUM':
      return Number(fromUnits(units.reduce((a, b) => a + b, 0n)));
    case 'AVG':
      return Number(fromUnits(units.reduce((a, b) => a + b, 0n))) / units.length;
    case 'MIN':
    case 'MAX': {
      const ascending = [...units].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return Number(fromUnits((aggregation === 'MIN' ? ascending[0] : ascending.at(-1)) as bigint));
    }
    case 'LATEST': {
      // The greatest (time, source, id); strings compared as bytes.
      let latest = 0;
      for (let i = 1; i < events.length; i++) {
        const a = (events[latest] as Group['events'][number]).event;
        const b = (events[i] as Group['events'][number]).event;
        const order = b.time - a.time || compareText(b.source, a.source) || compareText(b.id, a.id);
        if (order > 0) latest = i;
      }
      return Number(fromUnits(units[latest] as bigint));
    }
  }
}
