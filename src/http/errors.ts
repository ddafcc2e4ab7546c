import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, type FieldProblem } from '../lib/errors.ts';

/** Fastify's own errors, mapped once onto the registry's codes. */
const FASTIFY_CODES: Record<string, AppError['code']> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ML_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ML_ERR_HTTP_BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'ML_ERR_HTTP_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ML_ERR_HTTP_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ML_ERR_HTTP_BAD_REQUEST',
};

function toAppError(error: FastifyError | Error): AppError {
  if (error instanceof AppError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = (error as FastifyError).validationContext ?? 'request';
    const errors: FieldProblem[] = error.validation.map((v) => ({
      field: v.instancePath.replace(/^\//, '').replaceAll('/', '.') || where,
      message: v.message ?? 'invalid',
    }));
    const fields = errors.map((e) => e.field).join(', ');
    return new AppError('ML_ERR_HTTP_BAD_REQUEST', `invalid ${where}: ${fields}`, { errors });
  }
  const code = 'code' in error ? FASTIFY_CODES[error.code] : undefined;
  if (code) return new AppError(code, error.message);
  const status = 'statusCode' in error ? error.statusCode : undefined;
  if (status && status >= 400 && status < 500) return new AppError('ML_ERR_HTTP_BAD_REQUEST', error.message);
  return new AppError('ML_ERR_INTERNAL', 'internal error', {}, { cause: error });
}

/** Renders every error as RFC 9457 application/problem+json; 5xx details stay in the log. */
export function problemHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  const problem = toAppError(error);
  if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: problem.code, detail: problem.message }, 'request rejected');
  if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds));
  const body = {
    type: 'about:blank',
    title: problem.title,
    status: problem.status,
    code: problem.code,
    detail: problem.message,
    instance: `urn:request:${request.id}`,
    ...problem.extensions,
  };
  // Sent as bytes so Fastify does not append "; charset=utf-8": OpenMeter's SDK reads the problem
  // details only when the content type is exactly application/problem+json.
  reply
    .code(problem.status)
    .type('application/problem+json')
    .send(Buffer.from(JSON.stringify(body)));
}
