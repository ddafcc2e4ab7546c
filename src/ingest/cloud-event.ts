import { z } from 'zod';

const MAX_ATTRIBUTE_LENGTH = 1024;

const attribute = (name: string) =>
  z
    .string({
      error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`),
    })
    .min(1, `${name} must not be empty`)
    .max(MAX_ATTRIBUTE_LENGTH, `${name} is longer than ${MAX_ATTRIBUTE_LENGTH} characters`)
    .refine((value) => value.isWellFormed(), `${name} holds an unpaired UTF-16 surrogate (not Unicode text)`);

/**
 * A CloudEvents 1.0 event as OpenMeter accepts it. Extension attributes are allowed and ignored.
 * `time` is checked by the ingest service (it needs the clock); here it only has to be a string.
 */
export const CloudEvent = z
  .looseObject({
    id: attribute('id'),
    source: attribute('source'),
    specversion: z.literal('1.0', { error: 'specversion must be "1.0"' }),
    type: attribute('type'),
    subject: attribute('subject'),
    time: z.string({ error: 'time must be an RFC 3339 string' }).nullish(),
    datacontenttype: z
      .literal('application/json', { error: 'datacontenttype must be application/json' })
      .nullish(),
    dataschema: attribute('dataschema').nullish(),
    // Checked, not copied: a copy would drop a "__proto__" key silently (the service refuses it).
    data: z
      .custom<Record<string, unknown>>(
        (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
        { error: 'data must be a JSON object' },
      )
      .meta({ type: 'object', additionalProperties: {} })
      .nullish(),
  })
  .meta({ id: 'Event', description: 'CloudEvents 1.0 event (OpenMeter v1 compatible)' });
export type CloudEvent = z.infer<typeof CloudEvent>;

export const IngestEventsBody = z.union([CloudEvent, z.array(CloudEvent)]);

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch for an RFC 3339 timestamp (fraction truncated to ms), or null. */
export function parseRfc3339(text: string): number | null {
  const match = RFC3339.exec(text);
  if (!match) return null;
  const [, year, month, day, hour, minute, second] = match.map(Number) as number[];
  const ms = Date.parse(text.replace(' ', 'T'));
  if (Number.isNaN(ms)) return null;
  // Date.parse rolls 2024-02-30 over to March; a real calendar date round-trips unchanged.
  const check = new Date(Date.UTC(year as number, (month as number) - 1, day, hour, minute, second));
  if (check.getUTCDate() !== day || check.getUTCMonth() !== (month as number) - 1) return null;
  if ((hour as number) > 23 || (minute as number) > 59 || (second as number) > 59) return null;
  return Math.floor(ms);
}
