import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/** SyncGroup v3: followers wait for the leader's assignment; see group/coordinator.ts. */
export const syncGroup: ApiHandler = {
  key: ApiKey.SyncGroup,
  name: 'SyncGroup',
  minVersion: 3,
  maxVersion: 3,
  async handle(request, { broker }) {
    const groupId = request.string();
    const generationId = request.int32();
    const memberId = request.string();
    request.nullableString(); // group_instance_id
    const assignments = new Map(request.array((r) => [r.string(), Buffer.from(r.bytes() ?? [])] as const));
    const result = await broker.groups.sync(groupId, generationId, memberId, assignments);
    return new Writer()
      .int32(0) // throttle_time_ms
      .int16(result.error)
      .bytes(result.assignment);
  },
};
