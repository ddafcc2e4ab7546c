import { apiVersions } from './api-versions.ts';
import { createTopics } from './create-topics.ts';
import { describeGroups } from './describe-groups.ts';
import { fetch } from './fetch.ts';
import { findCoordinator } from './find-coordinator.ts';
import { heartbeat } from './heartbeat.ts';
import { initProducerId } from './init-producer-id.ts';
import { joinGroup } from './join-group.ts';
import { leaveGroup } from './leave-group.ts';
import { listOffsets } from './list-offsets.ts';
import { metadata } from './metadata.ts';
import { offsetCommit } from './offset-commit.ts';
import { offsetFetch } from './offset-fetch.ts';
import { produce } from './produce.ts';
import { syncGroup } from './sync-group.ts';
import type { ApiHandler } from './types.ts';

/** Every API the broker answers, in API key order; ApiVersions advertises exactly these. */
export const APIS: readonly ApiHandler[] = [
  produce,
  fetch,
  listOffsets,
  metadata,
  offsetCommit,
  offsetFetch,
  findCoordinator,
  joinGroup,
  heartbeat,
  leaveGroup,
  syncGroup,
  describeGroups,
  apiVersions,
  createTopics,
  initProducerId,
];

export { type ApiHandler, ApiKey, type RequestContext } from './types.ts';
