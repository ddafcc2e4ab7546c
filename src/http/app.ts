import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { eventRoutes } from '../events/routes.ts';
import type { EventStore } from '../events/store.ts';
import { ingestRoutes } from '../ingest/routes.ts';
import type { IngestService } from '../ingest/service.ts';
import type { KeyService } from '../keys/service.ts';
import { AppError } from '../lib/errors.ts';
import { meterRoutes } from '../meters/routes.ts';
import type { MeterService } from '../meters/service.ts';
import type { Metrics } from '../ops/metrics.ts';
import { opsRoutes, type ReadinessCheck } from '../ops/routes.ts';
import { stripeRoutes, stripeWebhookRoutes } from '../stripe/routes.ts';
import type { StripeService } from '../stripe/service.ts';
import { subjectRoutes } from '../subjects/routes.ts';
import type { SubjectStore } from '../subjects/store.ts';
import { requireApiKey } from './auth.ts';
import { problemHandler } from './errors.ts';

export type OpsDeps = {
  logger: Logger;
  metrics: Metrics;
  checks: ReadinessCheck[];
  beforeScrape?: () => Promise<void>;
};

export type AppDeps = OpsDeps & {
  keys: KeyService;
  ingest: IngestService;
  events: EventStore;
  meters: MeterService;
  subjects: SubjectStore;
  stripe: StripeService;
  maxBodyBytes: number;
};

/**
 * The server every role shares: problem+json errors, request ids, and /healthz, /readyz and
 * /metrics. Roles without the api (a lone sink or worker) serve just this, so they can be probed
 * and scraped too.
 */
export async function buildOpsApp(
  deps: OpsDeps,
  options: { bodyLimit?: number } = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    return503OnClosing: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(problemHandler);
  app.setNotFoundHandler((request) => {
    throw new AppError('ML_ERR_HTTP_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  await app.register(opsRoutes(deps));
  return app;
}

/** Builds the HTTP app without listening, so tests can `inject` into it. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = await buildOpsApp(deps, { bodyLimit: deps.maxBodyBytes });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Meterline API', version: '1', description: 'OpenMeter v1 compatible usage metering' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
    transform: jsonSchemaTransform,
    // Emits the schemas named with .meta({ id }) under components, where the paths refer to them.
    transformObject: jsonSchemaTransformObject,
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(async (api) => {
    requireApiKey(api, deps.keys);
    await api.register(ingestRoutes(deps.ingest, { maxBodyBytes: deps.maxBodyBytes }));
    await api.register(eventRoutes(deps.events, deps.meters));
    await api.register(meterRoutes(deps.meters));
    await api.register(subjectRoutes(deps.subjects));
    await api.register(stripeRoutes(deps.stripe));
  });
  await app.register(stripeWebhookRoutes(deps.stripe));
  return app;
}

/**
 * Stops accepting, lets requests in flight finish (their events are already being published),
 * and closes keep-alive connections as they fall idle; Fastify alone closes only those idle at the
 * moment of close, so a client's pooled connection would hold shutdown for the keep-alive timeout.
 */
export async function closeGracefully(app: FastifyInstance, deadlineMs = 25_000): Promise<void> {
  const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
  const deadline = setTimeout(() => app.server.closeAllConnections(), deadlineMs);
  try {
    await app.close();
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
}
