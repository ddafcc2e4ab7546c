import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * DescribeGroups v2 (kafkajs consumer.describeGroup / admin.describeGroups). Member metadata and
 * assignments are filled in only while the group is Stable, as Kafka does; an unknown group is
 * "Dead" with no members.
 */
export const describeGroups: ApiHandler = {
  key: ApiKey.DescribeGroups,
  name: 'DescribeGroups',
  minVersion: 2,
  maxVersion: 2,
  handle(request, { broker }) {
    const groups = request.array((r) => r.string()).map((id) => broker.groups.describe(id));
    return new Writer()
      .int32(0) // throttle_time_ms
      .array(groups, (w, g) =>
        w
          .int16(ErrorCode.NONE)
          .string(g.groupId)
          .string(g.state)
          .string(g.protocolType)
          .string(g.protocolName)
          .array(g.members, (mw, m) =>
            mw
              .string(m.memberId)
              .string(m.clientId)
              .string(m.clientHost)
              .bytes(m.metadata)
              .bytes(m.assignment),
          ),
      );
  },
};
