import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeyService } from '../keys/service.ts';
import { AppError } from '../lib/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The namespace of the request's API key: every query is scoped to it. */
    namespace: string;
  }
}

/** Bearer-key authentication for the routes registered inside the calling plugin. */
export function requireApiKey(app: FastifyInstance, keys: KeyService) {
  app.decorateRequest('namespace', '');
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) {
      throw new AppError('ML_ERR_HTTP_UNAUTHORIZED', 'missing Authorization: Bearer <api key>');
    }
    const namespace = await keys.authenticate(match[1]);
    if (!namespace) throw new AppError('ML_ERR_HTTP_UNAUTHORIZED', 'unknown or revoked API key');
    request.namespace = namespace;
  });
}
