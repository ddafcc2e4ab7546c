import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/** Heartbeat v3: keeps the member's session; REBALANCE_IN_PROGRESS tells it to rejoin. */
export const heartbeat: ApiHandler = {
  key: ApiKey.Heartbeat,
  name: 'Heartbeat',
  minVersion: 3,
  maxVersion: 3,
  handle(request, { broker }) {
    const groupId = request.string();
    const generationId = request.int32();
    const memberId = request.string();
    request.nullableString(); // group_instance_id
    return new Writer()
      .int32(0) // throttle_time_ms
      .int16(broker.groups.heartbeat(groupId, generationId, memberId));
  },
};
