import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import type { EventLog, LogMessage } from '../eventlog/event-log.ts';
import { encodeLogEvent, eventKey, type LogEvent } from '../events/event.ts';
import { AppError, type FieldProblem } from '../lib/errors.ts';
import type { Metrics } from '../ops/metrics.ts';
import { CloudEvent, parseRfc3339 } from './cloud-event.ts';
import { type DataLimits, dataProblem } from './data-check.ts';

export type IngestService = ReturnType<typeof createIngestService>;

type Deps = { log: EventLog; metrics: Metrics; now?: () => number };
type Options = {
  maxBatchEvents: number;
  maxFutureSkewSeconds: number;
  /** UTF-8 bytes of one encoded log event; also bounds the total of its flattened paths. */
  maxEventBytes: number;
  maxDataDepth: number;
  maxDataLeaves: number;
};

/** Where the events of a request came from: one event, or a batch (an array). */
export type IngestShape = 'single' | 'batch' | 'either';

function fieldOf(issue: z.core.$ZodIssue): string {
  return issue.path.length === 0 ? '(event)' : issue.path.map(String).join('.');
}

/**
 * Validates a request's events and publishes them to the event log (invariant 2): the whole
 * request is refused if any event is invalid, and success is returned only once the log has
 * acknowledged every event.
 */
export function createIngestService({ log, metrics, now = Date.now }: Deps, options: Options) {
  // What the sink could never store is refused here, at the door (issue 8): a row is bounded by
  // the encoded event plus its flattened paths, both at most maxEventBytes.
  const dataLimits: DataLimits = {
    maxDepth: options.maxDataDepth,
    maxLeaves: options.maxDataLeaves,
    maxPathBytes: options.maxEventBytes,
  };

  function reject(reason: string, error: AppError): never {
    metrics.eventsRejected.inc({ reason });
    throw error;
  }

  /** The request's events as log messages (keyed by identity), or a 4xx naming every bad field. */
  function validate(namespace: string, body: unknown, shape: IngestShape): LogMessage[] {
    const isBatch = Array.isArray(body);
    if (shape === 'single' && isBatch) {
      reject(
        'shape',
        new AppError('ML_ERR_HTTP_BAD_REQUEST', 'application/cloudevents+json takes one event object'),
      );
    }
    if (shape === 'batch' && !isBatch) {
      reject(
        'shape',
        new AppError('ML_ERR_HTTP_BAD_REQUEST', 'application/cloudevents-batch+json takes an array'),
      );
    }
    const items: unknown[] = isBatch ? body : [body];
    if (items.length === 0)
      reject('empty', new AppError('ML_ERR_HTTP_BAD_REQUEST', 'the batch holds no events'));
    if (items.length > options.maxBatchEvents) {
      reject(
        'too_many',
        new AppError(
          'ML_ERR_INGEST_TOO_MANY_EVENTS',
          `a request may carry at most ${options.maxBatchEvents} events; this one has ${items.length}`,
        ),
      );
    }

    const at = now();
    const latest = at + options.maxFutureSkewSeconds * 1000;
    const problems: FieldProblem[] = [];
    const messages: LogMessage[] = [];
    const seen = new Map<string, { index: number; event: CloudEvent }>();
    items.forEach((item, i) => {
      const index = isBatch ? i : undefined;
      const parsed = CloudEvent.safeParse(item);
      if (!parsed.success) {
        for (const issue of parsed.error.issues)
          problems.push({ index, field: fieldOf(issue), message: issue.message });
        return;
      }
      const event = parsed.data;
      let time = at;
      if (event.time !== null && event.time !== undefined) {
        const ms = parseRfc3339(event.time);
        if (ms === null) {
          problems.push({
            index,
            field: 'time',
            message: `time is not an RFC 3339 date-time: ${event.time}`,
          });
          return;
        }
        if (ms < 0) {
          problems.push({ index, field: 'time', message: 'time before 1970-01-01 cannot be stored' });
          return;
        }
        if (ms > latest) {
          problems.push({
            index,
            field: 'time',
            message: `time is more than ${options.maxFutureSkewSeconds} s in the future`,
          });
          return;
        }
        time = ms;
      }
      const badData = event.data ? dataProblem(event.data, dataLimits) : null;
      if (badData) {
        problems.push({ index, ...badData });
        return;
      }
      const logEvent: LogEvent = {
        namespace,
        id: event.id,
        source: event.source,
        type: event.type,
        subject: event.subject,
        time,
        datacontenttype: event.datacontenttype ?? null,
        dataschema: event.dataschema ?? null,
        data: event.data ?? null,
        ingestedAt: at,
      };
      const key = eventKey(logEvent);
      const earlier = seen.get(key);
      if (earlier) {
        // A retried event inside one batch is harmless; the same identity with other content is a bug.
        if (!isDeepStrictEqual(earlier.event, event)) {
          problems.push({
            index,
            field: 'id',
            message: `id ${JSON.stringify(event.id)} from source ${JSON.stringify(event.source)} repeats event ${earlier.index} with different content`,
          });
        }
        return;
      }
      const value = encodeLogEvent(logEvent);
      const bytes = Buffer.byteLength(value);
      if (bytes > options.maxEventBytes) {
        problems.push({
          index,
          field: '(event)',
          message: `the event takes ${bytes} bytes encoded; the limit is ${options.maxEventBytes}`,
        });
        return;
      }
      seen.set(key, { index: i, event });
      messages.push({ key, value });
    });

    if (problems.length > 0) {
      const badEvents = new Set(problems.map((p) => p.index)).size;
      reject(
        'invalid',
        new AppError(
          'ML_ERR_INGEST_INVALID_EVENTS',
          isBatch
            ? `${badEvents} of ${items.length} events are invalid; nothing was stored`
            : 'the event is invalid; nothing was stored',
          { errors: problems },
        ),
      );
    }
    return messages;
  }

  return {
    validate,
    /** Validates, then publishes; resolves once the log acknowledged every event. */
    async ingest(namespace: string, body: unknown, shape: IngestShape): Promise<number> {
      const messages = validate(namespace, body, shape);
      try {
        await log.publish(messages);
      } catch (err) {
        metrics.eventsRejected.inc({ reason: 'event_log' });
        if (err instanceof AppError) throw err;
        throw new AppError(
          'ML_ERR_EVENTLOG_UNAVAILABLE',
          'the event log did not accept the events; retry',
          {},
          {
            cause: err,
          },
        );
      }
      metrics.eventsAccepted.inc(messages.length);
      return messages.length;
    },
  };
}
