import { z } from 'zod';
import { childPath } from '../events/event.ts';

export const Aggregation = z.enum(['SUM', 'COUNT', 'UNIQUE_COUNT', 'AVG', 'MIN', 'MAX', 'LATEST']);
export type Aggregation = z.infer<typeof Aggregation>;

/** Aggregations that read a number from each event (a missing or non-numeric value leaves it out). */
export const NUMERIC_AGGREGATIONS: readonly Aggregation[] = ['SUM', 'AVG', 'MIN', 'MAX', 'LATEST'];

export const WindowSize = z.enum(['MINUTE', 'HOUR', 'DAY', 'MONTH']);
export type WindowSize = z.infer<typeof WindowSize>;

const SEGMENT =
  /^\.([A-Za-z_$][\w$-]*)|^\[(\d+)\]|^\[\s*'((?:[^'\\]|\\.)*)'\s*\]|^\[\s*"((?:[^"\\]|\\.)*)"\s*\]/;

/**
 * A meter's JSONPath ($.usage.input_tokens, $['odd key'], $.items[0]) in the canonical form the
 * sink stores leaf paths in (see childPath), or null if it is not a plain path to one value
 * (wildcards, filters and recursive descent select many values and are refused).
 */
export function canonicalPath(jsonPath: string): string | null {
  let rest = jsonPath.trim();
  if (!rest.startsWith('$')) return null;
  rest = rest.slice(1);
  let path = '$';
  if (rest === '') return null;
  while (rest.length > 0) {
    const match = SEGMENT.exec(rest);
    if (!match) return null;
    const [whole, dotted, index, single, double] = match;
    if (index !== undefined) path = childPath(path, Number(index));
    else {
      const key = dotted ?? (single ?? double ?? '').replace(/\\(.)/g, '$1');
      path = childPath(path, key);
    }
    rest = rest.slice(whole.length);
  }
  return path;
}

const jsonPath = z
  .string()
  .min(1)
  .refine((path) => canonicalPath(path) !== null, 'must be a JSONPath to one value, such as $.usage.tokens');

const GROUP_KEY = /^[A-Za-z0-9_]+$/;

const groupBy = z
  .record(z.string().regex(GROUP_KEY, 'group-by keys are letters, digits and _'), jsonPath)
  .refine((g) => !('subject' in g), '"subject" is reserved')
  .refine((g) => Object.keys(g).length <= 20, 'at most 20 group-by keys');

const metadata = z.record(z.string(), z.string()).nullish();

export const Slug = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9]+(?:_[a-z0-9]+)*$/, 'lowercase letters and digits, words joined by _');

/** RFC 3339 with Z or an offset: a time without one would be read in the server's zone. */
export const DateTimeWithOffset = z.iso.datetime({ offset: true });

export const MeterCreate = z
  .object({
    slug: Slug,
    name: z.string().min(1).max(256).optional(),
    description: z.string().max(1024).optional(),
    metadata,
    aggregation: Aggregation,
    eventType: z.string().min(1).max(1024),
    eventFrom: DateTimeWithOffset.optional(),
    valueProperty: jsonPath.optional(),
    groupBy: groupBy.optional(),
  })
  .superRefine((meter, ctx) => {
    if (meter.aggregation !== 'COUNT' && !meter.valueProperty) {
      ctx.addIssue({
        code: 'custom',
        path: ['valueProperty'],
        message: `${meter.aggregation} needs a valueProperty`,
      });
    }
  })
  .meta({ id: 'MeterCreate' });
export type MeterCreate = z.infer<typeof MeterCreate>;

/** What can change after creation: not the slug, aggregation, event type or value (history depends on them). */
export const MeterUpdate = z
  .object({
    name: z.string().min(1).max(256).optional(),
    description: z.string().max(1024).optional(),
    metadata,
    groupBy: groupBy.optional(),
  })
  .meta({ id: 'MeterUpdate' });
export type MeterUpdate = z.infer<typeof MeterUpdate>;

export type Meter = {
  id: string;
  namespace: string;
  slug: string;
  name: string;
  description: string | null;
  metadata: Record<string, string> | null;
  aggregation: Aggregation;
  eventType: string;
  eventFrom: Date | null;
  valueProperty: string | null;
  groupBy: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
};

export const ApiMeter = z
  .object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    description: z.string().optional(),
    metadata: z.record(z.string(), z.string()).nullable().optional(),
    aggregation: Aggregation,
    eventType: z.string(),
    eventFrom: z.string().optional(),
    valueProperty: z.string().optional(),
    groupBy: z.record(z.string(), z.string()),
    createdAt: z.string(),
    updatedAt: z.string(),
    deletedAt: z.string().optional(),
  })
  .meta({ id: 'Meter' });

export function toApiMeter(meter: Meter): z.infer<typeof ApiMeter> {
  return {
    id: meter.id,
    slug: meter.slug,
    name: meter.name,
    ...(meter.description !== null ? { description: meter.description } : {}),
    metadata: meter.metadata,
    aggregation: meter.aggregation,
    eventType: meter.eventType,
    ...(meter.eventFrom ? { eventFrom: meter.eventFrom.toISOString() } : {}),
    ...(meter.valueProperty ? { valueProperty: meter.valueProperty } : {}),
    groupBy: meter.groupBy,
    createdAt: meter.createdAt.toISOString(),
    updatedAt: meter.updatedAt.toISOString(),
    ...(meter.deletedAt ? { deletedAt: meter.deletedAt.toISOString() } : {}),
  };
}
