import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * JoinGroup v5; the state machine is in group/coordinator.ts. The response may be held for the
 * whole rebalance. Static membership (group_instance_id, KIP-345) is not implemented.
 */
export const joinGroup: ApiHandler = {
  key: ApiKey.JoinGroup,
  name: 'JoinGroup',
  minVersion: 5,
  maxVersion: 5,
  async handle(request, { broker, clientId, clientHost }) {
    const groupId = request.string();
    const sessionTimeoutMs = request.int32();
    const rebalanceTimeoutMs = request.int32();
    const memberId = request.string();
    const groupInstanceId = request.nullableString();
    const protocolType = request.string();
    const protocols = request.array((r) => ({ name: r.string(), metadata: Buffer.from(r.bytes() ?? []) }));

    const result =
      groupInstanceId !== null
        ? {
            error: ErrorCode.INVALID_REQUEST,
            generationId: -1,
            protocolName: null,
            leaderId: '',
            memberId,
            members: [],
          }
        : await broker.groups.join({
            groupId,
            memberId,
            clientId,
            clientHost,
            sessionTimeoutMs,
            rebalanceTimeoutMs,
            protocolType,
            protocols,
          });
    return new Writer()
      .int32(0) // throttle_time_ms
      .int16(result.error)
      .int32(result.generationId)
      .string(result.protocolName ?? '')
      .string(result.leaderId)
      .string(result.memberId)
      .array(result.members, (w, m) => w.string(m.memberId).string(null).bytes(m.metadata));
  },
};
