import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseJson } from '../events/json.ts';
import { AppError } from '../lib/errors.ts';
import { IngestEventsBody } from './cloud-event.ts';
import type { IngestService, IngestShape } from './service.ts';

const SHAPES: Record<string, IngestShape> = {
  'application/cloudevents+json': 'single',
  'application/cloudevents-batch+json': 'batch',
  'application/json': 'either',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads the raw body ourselves so that bad bytes and bad JSON get the same problem+json as bad events. */
function parseBody(request: FastifyRequest, body: Buffer): unknown {
  const contentType = request.headers['content-type'] ?? '';
  const charset = /;\s*charset="?([^";\s]+)"?/i.exec(contentType)?.[1];
  if (charset && charset.toLowerCase() !== 'utf-8' && charset.toLowerCase() !== 'utf8') {
    throw new AppError(
      'ML_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
      `charset ${charset} is not supported; send UTF-8`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new AppError('ML_ERR_HTTP_BAD_REQUEST', 'the body is not valid UTF-8');
  }
  try {
    // Every number keeps its source text: 12345678901234567 must not turn into ...568.
    return parseJson(text);
  } catch (err) {
    if (err instanceof RangeError) {
      throw new AppError('ML_ERR_HTTP_BAD_REQUEST', 'the body is nested too deeply to read');
    }
    throw new AppError('ML_ERR_HTTP_BAD_REQUEST', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

export function ingestRoutes(service: IngestService, options: { maxBodyBytes: number }) {
  return async (app: FastifyInstance) => {
    // Only the CloudEvents media types (and plain JSON); anything else is a 415.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(
      Object.keys(SHAPES),
      { parseAs: 'buffer', bodyLimit: options.maxBodyBytes },
      (request, body, done) => {
        try {
          done(null, parseBody(request, body as Buffer));
        } catch (err) {
          done(err as Error, undefined);
        }
      },
    );

    app.withTypeProvider<ZodTypeProvider>().post(
      '/api/v1/events',
      {
        schema: {
          operationId: 'ingestEvents',
          summary: 'Ingest events',
          description:
            'Ingests one CloudEvent or a batch. Answers 204 only after the event log acknowledged every event; ' +
            'an invalid request stores nothing.',
          tags: ['Events'],
          consumes: Object.keys(SHAPES),
          body: IngestEventsBody,
          response: { 204: z.null().describe('All events accepted') },
        },
        // The service validates each event itself, to name the failing event's index and field.
        validatorCompiler: () => (data) => ({ value: data }),
      },
      async (request, reply) => {
        const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        await service.ingest(request.namespace, request.body, SHAPES[mediaType] ?? 'either');
        return reply.code(204).send(null);
      },
    );
  };
}
