import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/** LeaveGroup v3 (a batch of members): each leaver is removed and the group rebalances. */
export const leaveGroup: ApiHandler = {
  key: ApiKey.LeaveGroup,
  name: 'LeaveGroup',
  minVersion: 3,
  maxVersion: 3,
  handle(request, { broker }) {
    const groupId = request.string();
    const members = request.array((r) => ({ memberId: r.string(), groupInstanceId: r.nullableString() }));
    const results = broker.groups.leave(
      groupId,
      members.map((m) => m.memberId),
    );
    return new Writer()
      .int32(0) // throttle_time_ms
      .int16(ErrorCode.NONE)
      .array(results, (w, r) => w.string(r.memberId).string(null).int16(r.error));
  },
};
