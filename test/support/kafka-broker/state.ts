import type { GroupCoordinator } from './group/coordinator.ts';
import type { TopicStore } from './log/topic-store.ts';

export type BrokerConfig = {
  nodeId: number;
  /** Host and port the broker advertises in Metadata and FindCoordinator. */
  host: string;
  port: number;
  clusterId: string;
  autoCreateTopics: boolean;
  defaultPartitions: number;
};

/** Everything the API handlers share: one broker's topics, groups and producer ids. */
export type BrokerState = {
  config: BrokerConfig;
  topics: TopicStore;
  groups: GroupCoordinator;
  nextProducerId: number;
};
