import type { Reader } from '../protocol/reader.ts';
import type { Writer } from '../protocol/writer.ts';
import type { BrokerState } from '../state.ts';

/** API keys of the requests this broker answers (and a few it names in its errors). */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ApiVersions: 18,
  CreateTopics: 19,
  InitProducerId: 22,
} as const;

export type RequestContext = {
  apiVersion: number;
  clientId: string;
  clientHost: string;
  broker: BrokerState;
  /** Every API this broker implements, for ApiVersions. */
  apis: readonly ApiHandler[];
  /** Aborts when the client's connection closes (a held Fetch then stops waiting). */
  closed: AbortSignal;
  /** The broker's `log` option: for why a request was refused. */
  log(message: string): void;
};

/**
 * One Kafka API: the versions it speaks (advertised as is in ApiVersions) and a handler that
 * decodes the request body and returns the response body, or nothing when the request expects no
 * response (Produce with acks 0).
 */
export type ApiHandler = {
  key: number;
  name: string;
  minVersion: number;
  maxVersion: number;
  handle(request: Reader, context: RequestContext): Writer | undefined | Promise<Writer | undefined>;
};
