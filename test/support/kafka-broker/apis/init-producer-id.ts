import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * InitProducerId v1 for idempotent producers: a new producer id with epoch 0 on every call.
 * A transactional id is refused (INVALID_REQUEST): transactions are not implemented.
 */
export const initProducerId: ApiHandler = {
  key: ApiKey.InitProducerId,
  name: 'InitProducerId',
  minVersion: 1,
  maxVersion: 1,
  handle(request, { broker }) {
    const transactionalId = request.nullableString();
    request.int32(); // transaction_timeout_ms
    const response = new Writer().int32(0); // throttle_time_ms
    if (transactionalId !== null) return response.int16(ErrorCode.INVALID_REQUEST).int64(-1).int16(-1);
    const producerId = broker.nextProducerId++;
    return response.int16(ErrorCode.NONE).int64(producerId).int16(0);
  },
};
