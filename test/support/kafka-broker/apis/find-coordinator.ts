import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/** FindCoordinator v2: the only broker coordinates every group. */
export const findCoordinator: ApiHandler = {
  key: ApiKey.FindCoordinator,
  name: 'FindCoordinator',
  minVersion: 2,
  maxVersion: 2,
  handle(request, { broker: { config } }) {
    request.string(); // key: the group id
    request.int8(); // key_type: 0 group, 1 transaction
    return new Writer()
      .int32(0) // throttle_time_ms
      .int16(ErrorCode.NONE)
      .string(null) // error_message
      .int32(config.nodeId)
      .string(config.host)
      .int32(config.port);
  },
};
