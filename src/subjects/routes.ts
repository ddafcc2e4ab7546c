import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../lib/errors.ts';
import type { Subject, SubjectStore } from './store.ts';

const dateTime = z.iso.datetime({ offset: true });

export const SubjectUpsert = z
  .object({
    key: z.string().min(1).max(1024),
    displayName: z.string().max(1024).nullish(),
    metadata: z.record(z.string(), z.unknown()).nullish(),
    stripeCustomerId: z.string().max(255).nullish(),
    currentPeriodStart: dateTime.nullish(),
    currentPeriodEnd: dateTime.nullish(),
  })
  .meta({ id: 'SubjectUpsert' });

const ApiSubject = z
  .object({
    id: z.string(),
    key: z.string(),
    displayName: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    stripeCustomerId: z.string().nullable(),
    currentPeriodStart: z.string().optional(),
    currentPeriodEnd: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Subject' });

function toApiSubject(subject: Subject): z.infer<typeof ApiSubject> {
  return {
    id: subject.id,
    key: subject.key,
    displayName: subject.displayName,
    metadata: subject.metadata,
    stripeCustomerId: subject.stripeCustomerId,
    ...(subject.currentPeriodStart ? { currentPeriodStart: subject.currentPeriodStart.toISOString() } : {}),
    ...(subject.currentPeriodEnd ? { currentPeriodEnd: subject.currentPeriodEnd.toISOString() } : {}),
    createdAt: subject.createdAt.toISOString(),
    updatedAt: subject.updatedAt.toISOString(),
  };
}

const Params = z.object({ subjectIdOrKey: z.string().min(1) });

/** OpenMeter's subjects API: a subject key enriched with a name, metadata and its Stripe customer. */
export function subjectRoutes(store: SubjectStore) {
  return async (app: FastifyInstance) => {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['Subjects'];
    const find = async (namespace: string, idOrKey: string) => {
      const subject = await store.get(namespace, idOrKey);
      if (!subject) throw new AppError('ML_ERR_HTTP_NOT_FOUND', `no subject ${JSON.stringify(idOrKey)}`);
      return subject;
    };

    typed.get(
      '/api/v1/subjects',
      { schema: { operationId: 'listSubjects', tags, response: { 200: z.array(ApiSubject) } } },
      async (request) => (await store.list(request.namespace)).map(toApiSubject),
    );

    typed.post(
      '/api/v1/subjects',
      {
        schema: {
          operationId: 'upsertSubject',
          tags,
          body: z.array(SubjectUpsert).min(1).max(1000),
          response: { 200: z.array(ApiSubject) },
        },
      },
      async (request) => (await store.upsert(request.namespace, request.body)).map(toApiSubject),
    );

    typed.get(
      '/api/v1/subjects/:subjectIdOrKey',
      { schema: { operationId: 'getSubject', tags, params: Params, response: { 200: ApiSubject } } },
      async (request) => toApiSubject(await find(request.namespace, request.params.subjectIdOrKey)),
    );

    typed.delete(
      '/api/v1/subjects/:subjectIdOrKey',
      { schema: { operationId: 'deleteSubject', tags, params: Params, response: { 204: z.null() } } },
      async (request, reply) => {
        const subject = await find(request.namespace, request.params.subjectIdOrKey);
        await store.remove(request.namespace, subject.id);
        return reply.code(204).send(null);
      },
    );
  };
}
