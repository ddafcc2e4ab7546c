import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Slug } from '../meters/meter.ts';
import type { StripeService } from './service.ts';

const ConnectInput = z
  .object({
    apiKey: z
      .string()
      .regex(/^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/, 'a Stripe secret (sk_) or restricted (rk_) key'),
    webhookSecret: z
      .string()
      .regex(/^whsec_/, 'a webhook signing secret (whsec_…)')
      .optional(),
  })
  .meta({ id: 'StripeConnect' });

const Connection = z
  .object({
    accountId: z.string(),
    livemode: z.boolean(),
    apiKeyLast4: z.string(),
    webhook: z.object({ managed: z.boolean(), endpointId: z.string().nullable(), status: z.string() }),
    lastSyncAt: z.string().nullable(),
    problems: z.array(z.string()),
  })
  .meta({ id: 'StripeConnection' });

const Mapping = z.object({
  meters: z.array(
    z.object({
      meter: z.string(),
      aggregation: z.string(),
      stripeMeterId: z.string().nullable(),
      linkedBy: z.string().nullable(),
    }),
  ),
  customers: z.array(z.object({ customerId: z.string(), subject: z.string(), subjectFrom: z.string() })),
  problems: z.array(z.string()),
});

/** Connection management and the mapping, behind the API key. */
export function stripeRoutes(service: StripeService) {
  return async (app: FastifyInstance) => {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['Stripe'];

    typed.put(
      '/api/v1/stripe/connection',
      { schema: { operationId: 'connectStripe', tags, body: ConnectInput, response: { 200: Connection } } },
      async (request) => service.connect(request.namespace, request.body),
    );
    typed.get(
      '/api/v1/stripe/connection',
      { schema: { operationId: 'getStripeConnection', tags, response: { 200: Connection } } },
      async (request) => service.describe(request.namespace),
    );
    typed.delete(
      '/api/v1/stripe/connection',
      { schema: { operationId: 'disconnectStripe', tags, response: { 204: z.null() } } },
      async (request, reply) => {
        await service.disconnect(request.namespace);
        return reply.code(204).send(null);
      },
    );
    typed.post(
      '/api/v1/stripe/sync',
      {
        schema: {
          operationId: 'syncStripe',
          tags,
          response: { 200: z.object({ problems: z.array(z.string()) }) },
        },
      },
      async (request) => ({ problems: await service.sync(request.namespace) }),
    );
    typed.get(
      '/api/v1/stripe/mapping',
      { schema: { operationId: 'getStripeMapping', tags, response: { 200: Mapping } } },
      async (request) => service.mapping(request.namespace),
    );
    typed.put(
      '/api/v1/stripe/mapping/:meterSlug',
      {
        schema: {
          operationId: 'linkStripeMeter',
          tags,
          params: z.object({ meterSlug: Slug }),
          body: z.object({ stripeMeterId: z.string().regex(/^mtr_/, 'a Stripe meter id (mtr_…)') }),
          response: { 200: Mapping },
        },
      },
      async (request) =>
        service.linkMeter(request.namespace, request.params.meterSlug, request.body.stripeMeterId),
    );
  };
}

/** Stripe's deliveries: authenticated by signature over the raw body, not by API key. */
export function stripeWebhookRoutes(service: StripeService) {
  return async (app: FastifyInstance) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
      done(null, body),
    );
    app.withTypeProvider<ZodTypeProvider>().post(
      '/api/v1/stripe/webhooks/:namespace',
      {
        schema: {
          operationId: 'receiveStripeWebhook',
          tags: ['Stripe'],
          params: z.object({ namespace: z.string().min(1).max(63) }),
          response: { 200: z.object({ received: z.literal(true), outcome: z.string() }) },
        },
        // The body is the raw Buffer the signature covers; it is parsed only after verification.
        validatorCompiler: () => (data) => ({ value: data }),
      },
      async (request) => {
        const signature = request.headers['stripe-signature'];
        const outcome = await service.receiveWebhook(
          request.params.namespace,
          request.body as Buffer,
          Array.isArray(signature) ? signature[0] : signature,
        );
        return { received: true as const, outcome };
      },
    );
  };
}
