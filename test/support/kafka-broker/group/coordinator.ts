import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../protocol/errors.ts';

/**
 * The group coordinator: Kafka's classic (pre-KIP-848) consumer group protocol.
 *
 *   Empty ──join──▶ PreparingRebalance ──all members rejoined, or rebalance timeout──▶ CompletingRebalance
 *     ▲                  ▲    ▲                                                              │
 *     └─ last member ────┘    └──── a member joins, leaves or expires ◀── Stable ◀── leader's SyncGroup
 *
 * - PreparingRebalance: JoinGroup requests are held; the other members learn of the rebalance from
 *   their Heartbeat (REBALANCE_IN_PROGRESS) and rejoin. The join completes when every known member
 *   has rejoined, or when the longest rebalance timeout passes, dropping those that did not.
 * - Completing the join bumps the generation and answers every held JoinGroup; the leader's answer
 *   carries all members' subscription metadata, so it computes the assignment.
 * - CompletingRebalance: SyncGroup requests are held until the leader's SyncGroup brings the
 *   assignment; then the group is Stable and every member gets its part.
 * - A member that sends nothing (Heartbeat, JoinGroup, SyncGroup, OffsetCommit) for its session
 *   timeout is removed, which starts a rebalance. Closing the connection alone does not remove it.
 * - JoinGroup v4+ with an empty member id gets MEMBER_ID_REQUIRED and a fresh id to rejoin with
 *   (KIP-394); a pending id is forgotten after the session timeout.
 */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

type Protocol = { name: string; metadata: Buffer };

type Member = {
  memberId: string;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: Protocol[];
  assignment: Buffer;
  awaitingJoin?: (result: JoinResult) => void;
  awaitingSync?: (result: SyncResult) => void;
  sessionTimer?: NodeJS.Timeout;
};

type CommittedOffset = { offset: number; metadata: string | null };

type Group = {
  groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: Map<string, Member>;
  pending: Map<string, NodeJS.Timeout>;
  rebalanceTimer?: NodeJS.Timeout;
  offsets: Map<string, Map<number, CommittedOffset>>;
};

export type JoinRequest = {
  groupId: string;
  memberId: string;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
};

export type JoinResult = {
  error: ErrorCode;
  generationId: number;
  protocolName: string | null;
  leaderId: string;
  memberId: string;
  members: { memberId: string; metadata: Buffer }[];
};

export type SyncResult = { error: ErrorCode; assignment: Buffer };

export type GroupDescription = {
  groupId: string;
  state: GroupState | 'Dead';
  protocolType: string;
  protocolName: string;
  members: { memberId: string; clientId: string; clientHost: string; metadata: Buffer; assignment: Buffer }[];
};

export type CoordinatorOptions = { minSessionTimeoutMs: number; maxSessionTimeoutMs: number };

const EMPTY = Buffer.alloc(0);

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly options: CoordinatorOptions) {}

  // ── JoinGroup ────────────────────────────────────────────────────────────────────────────────

  join(request: JoinRequest): Promise<JoinResult> | JoinResult {
    const fail = (error: ErrorCode, memberId = request.memberId) => joinError(error, memberId);
    if (request.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    const { minSessionTimeoutMs, maxSessionTimeoutMs } = this.options;
    if (request.sessionTimeoutMs < minSessionTimeoutMs || request.sessionTimeoutMs > maxSessionTimeoutMs) {
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    }
    let group = this.groups.get(request.groupId);
    if (!group) {
      if (request.memberId !== '') return fail(ErrorCode.UNKNOWN_MEMBER_ID);
      group = this.createGroup(request.groupId);
    }
    if (!supportsProtocols(group, request.protocolType, request.protocols)) {
      return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }

    if (request.memberId === '') {
      const memberId = `${request.clientId}-${randomUUID()}`;
      this.addPending(group, memberId, request.sessionTimeoutMs);
      return fail(ErrorCode.MEMBER_ID_REQUIRED, memberId);
    }

    const pendingTimer = group.pending.get(request.memberId);
    if (pendingTimer) {
      clearTimeout(pendingTimer);
      group.pending.delete(request.memberId);
      const member: Member = {
        memberId: request.memberId,
        clientId: request.clientId,
        clientHost: request.clientHost,
        sessionTimeoutMs: request.sessionTimeoutMs,
        rebalanceTimeoutMs: request.rebalanceTimeoutMs,
        protocols: request.protocols,
        assignment: EMPTY,
      };
      group.members.set(member.memberId, member);
      group.protocolType ??= request.protocolType;
      group.leaderId ??= member.memberId;
      return this.awaitJoin(group, member, () => this.rebalanceOrTryComplete(group));
    }

    const member = group.members.get(request.memberId);
    if (!member) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    const changed = !sameProtocols(member.protocols, request.protocols);
    Object.assign(member, {
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      protocols: request.protocols,
    });
    switch (group.state) {
      case 'PreparingRebalance':
        return this.awaitJoin(group, member, () => this.tryCompleteJoin(group));
      case 'CompletingRebalance':
      case 'Stable': {
        // A rejoin with nothing new just gets the current generation again; the leader rejoining
        // in Stable, or anyone with new subscriptions, starts a rebalance.
        const rebalance = changed || (group.state === 'Stable' && member.memberId === group.leaderId);
        if (!rebalance) {
          this.scheduleSessionExpiry(group, member);
          return this.joinResult(group, member);
        }
        return this.awaitJoin(group, member, () => this.prepareRebalance(group));
      }
      case 'Empty':
        return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    }
  }

  private awaitJoin(group: Group, member: Member, then: () => void): Promise<JoinResult> {
    return new Promise((resolve) => {
      member.awaitingJoin?.(joinError(ErrorCode.REBALANCE_IN_PROGRESS, member.memberId));
      member.awaitingJoin = resolve;
      this.scheduleSessionExpiry(group, member);
      then();
    });
  }

  private addPending(group: Group, memberId: string, sessionTimeoutMs: number) {
    const timer = setTimeout(() => {
      group.pending.delete(memberId);
      this.tryCompleteJoin(group);
    }, sessionTimeoutMs);
    timer.unref();
    group.pending.set(memberId, timer);
  }

  private rebalanceOrTryComplete(group: Group) {
    if (group.state === 'PreparingRebalance') this.tryCompleteJoin(group);
    else this.prepareRebalance(group);
  }

  private prepareRebalance(group: Group) {
    if (group.state === 'CompletingRebalance') {
      for (const m of group.members.values()) {
        m.awaitingSync?.({ error: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY });
        m.awaitingSync = undefined;
      }
    }
    group.state = 'PreparingRebalance';
    clearTimeout(group.rebalanceTimer);
    const timeout = Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));
    group.rebalanceTimer = setTimeout(() => this.completeJoin(group), timeout);
    group.rebalanceTimer.unref();
    this.tryCompleteJoin(group);
  }

  private tryCompleteJoin(group: Group) {
    if (group.state !== 'PreparingRebalance' || group.pending.size > 0) return;
    for (const m of group.members.values()) if (!m.awaitingJoin) return;
    this.completeJoin(group);
  }

  /** Ends PreparingRebalance: drops members that did not rejoin and starts the next generation. */
  private completeJoin(group: Group) {
    if (group.state !== 'PreparingRebalance') return;
    clearTimeout(group.rebalanceTimer);
    // Members that did not rejoin in time are dropped; pending ids keep their own expiry.
    for (const m of [...group.members.values()]) if (!m.awaitingJoin) this.forget(group, m);

    group.generationId += 1;
    const first = group.members.values().next();
    if (first.done) {
      group.state = 'Empty';
      group.protocolType = null;
      group.protocolName = null;
      group.leaderId = null;
      return;
    }
    if (group.leaderId === null || !group.members.has(group.leaderId)) group.leaderId = first.value.memberId;
    group.protocolName = selectProtocol(group);
    group.state = 'CompletingRebalance';
    for (const m of group.members.values()) {
      const respond = m.awaitingJoin;
      m.awaitingJoin = undefined;
      this.scheduleSessionExpiry(group, m);
      respond?.(this.joinResult(group, m));
    }
  }

  private joinResult(group: Group, member: Member): JoinResult {
    const isLeader = member.memberId === group.leaderId;
    return {
      error: ErrorCode.NONE,
      generationId: group.generationId,
      protocolName: group.protocolName,
      leaderId: group.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY,
          }))
        : [],
    };
  }

  // ── SyncGroup, Heartbeat, LeaveGroup ─────────────────────────────────────────────────────────

  sync(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: Map<string, Buffer>,
  ): Promise<SyncResult> | SyncResult {
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) return { error: ErrorCode.UNKNOWN_MEMBER_ID, assignment: EMPTY };
    if (generationId !== group.generationId)
      return { error: ErrorCode.ILLEGAL_GENERATION, assignment: EMPTY };
    switch (group.state) {
      case 'Empty':
        return { error: ErrorCode.UNKNOWN_MEMBER_ID, assignment: EMPTY };
      case 'PreparingRebalance':
        return { error: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY };
      case 'Stable':
        this.scheduleSessionExpiry(group, member);
        return { error: ErrorCode.NONE, assignment: member.assignment };
      case 'CompletingRebalance':
        return new Promise((resolve) => {
          member.awaitingSync = resolve;
          this.scheduleSessionExpiry(group, member);
          if (memberId !== group.leaderId) return;
          for (const m of group.members.values()) m.assignment = assignments.get(m.memberId) ?? EMPTY;
          group.state = 'Stable';
          for (const m of group.members.values()) {
            const respond = m.awaitingSync;
            m.awaitingSync = undefined;
            respond?.({ error: ErrorCode.NONE, assignment: m.assignment });
          }
        });
    }
  }

  heartbeat(groupId: string, generationId: number, memberId: string): ErrorCode {
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.scheduleSessionExpiry(group, member);
    return group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  leave(groupId: string, memberIds: string[]): { memberId: string; error: ErrorCode }[] {
    const group = this.groups.get(groupId);
    return memberIds.map((memberId) => {
      const member = group?.members.get(memberId);
      if (!group || !member) return { memberId, error: ErrorCode.UNKNOWN_MEMBER_ID };
      this.removeAndRebalance(group, member);
      return { memberId, error: ErrorCode.NONE };
    });
  }

  private scheduleSessionExpiry(group: Group, member: Member) {
    clearTimeout(member.sessionTimer);
    member.sessionTimer = setTimeout(() => {
      if (group.members.get(member.memberId) !== member) return;
      // A member whose JoinGroup or SyncGroup is being held is alive by definition.
      if (member.awaitingJoin || member.awaitingSync) this.scheduleSessionExpiry(group, member);
      else this.removeAndRebalance(group, member);
    }, member.sessionTimeoutMs);
    member.sessionTimer.unref();
  }

  private removeAndRebalance(group: Group, member: Member) {
    this.forget(group, member);
    member.awaitingJoin?.(joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.memberId));
    member.awaitingSync?.({ error: ErrorCode.UNKNOWN_MEMBER_ID, assignment: EMPTY });
    if (group.state === 'PreparingRebalance') this.tryCompleteJoin(group);
    else if (group.state !== 'Empty') this.prepareRebalance(group);
  }

  private forget(group: Group, member: Member) {
    clearTimeout(member.sessionTimer);
    group.members.delete(member.memberId);
  }

  // ── Offsets ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Whether an OffsetCommit may be stored. Generation -1 with no member id is a "simple" commit,
   * allowed only while no consumer is in the group (what admin tools do); otherwise the member must
   * belong to the current generation. A valid commit also counts as a heartbeat.
   */
  validateCommit(groupId: string, generationId: number, memberId: string): ErrorCode {
    const group = this.groups.get(groupId);
    if (generationId < 0 && memberId === '') {
      if (!group) this.createGroup(groupId);
      return !group || group.state === 'Empty' ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
    }
    const member = group?.members.get(memberId);
    if (!group) return ErrorCode.ILLEGAL_GENERATION;
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    this.scheduleSessionExpiry(group, member);
    return ErrorCode.NONE;
  }

  storeOffset(groupId: string, topic: string, partition: number, offset: number, metadata: string | null) {
    const group = this.groups.get(groupId) ?? this.createGroup(groupId);
    let partitions = group.offsets.get(topic);
    if (!partitions) {
      partitions = new Map();
      group.offsets.set(topic, partitions);
    }
    partitions.set(partition, { offset, metadata });
  }

  committedOffset(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.groups.get(groupId)?.offsets.get(topic)?.get(partition);
  }

  /** Every topic-partition the group committed, for OffsetFetch with a null topic list. */
  committedTopics(groupId: string): { topic: string; partitions: number[] }[] {
    const offsets = this.groups.get(groupId)?.offsets ?? new Map<string, Map<number, CommittedOffset>>();
    return [...offsets].map(([topic, partitions]) => ({ topic, partitions: [...partitions.keys()].sort() }));
  }

  // ── DescribeGroups, lifecycle ────────────────────────────────────────────────────────────────

  describe(groupId: string): GroupDescription {
    const group = this.groups.get(groupId);
    if (!group) return { groupId, state: 'Dead', protocolType: '', protocolName: '', members: [] };
    const stable = group.state === 'Stable';
    return {
      groupId,
      state: group.state,
      protocolType: group.protocolType ?? '',
      protocolName: stable ? (group.protocolName ?? '') : '',
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: stable
          ? (m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY)
          : EMPTY,
        assignment: stable ? m.assignment : EMPTY,
      })),
    };
  }

  close() {
    for (const group of this.groups.values()) {
      clearTimeout(group.rebalanceTimer);
      for (const timer of group.pending.values()) clearTimeout(timer);
      for (const m of group.members.values()) clearTimeout(m.sessionTimer);
    }
  }

  private createGroup(groupId: string): Group {
    const group: Group = {
      groupId,
      state: 'Empty',
      generationId: 0,
      protocolType: null,
      protocolName: null,
      leaderId: null,
      members: new Map(),
      pending: new Map(),
      offsets: new Map(),
    };
    this.groups.set(groupId, group);
    return group;
  }
}

function joinError(error: ErrorCode, memberId: string): JoinResult {
  return { error, generationId: -1, protocolName: null, leaderId: '', memberId, members: [] };
}

function sameProtocols(a: Protocol[], b: Protocol[]): boolean {
  return (
    a.length === b.length && a.every((p, i) => p.name === b[i]?.name && p.metadata.equals(b[i].metadata))
  );
}

/** A joining member must share the group's protocol type and at least one protocol with everyone. */
function supportsProtocols(group: Group, protocolType: string, protocols: Protocol[]): boolean {
  if (protocolType === '' || protocols.length === 0) return false;
  if (group.members.size === 0) return true;
  if (protocolType !== group.protocolType) return false;
  return protocols.some((p) =>
    [...group.members.values()].every((m) => m.protocols.some((q) => q.name === p.name)),
  );
}

/** Each member votes for its most preferred protocol that every member supports; most votes wins. */
function selectProtocol(group: Group): string {
  const members = [...group.members.values()];
  const candidates = (members[0]?.protocols ?? [])
    .map((p) => p.name)
    .filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
  const votes = new Map<string, number>(candidates.map((name) => [name, 0]));
  for (const m of members) {
    const choice = m.protocols.find((p) => votes.has(p.name));
    if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
  }
  let best = candidates[0] ?? '';
  for (const [name, count] of votes) if (count > (votes.get(best) ?? 0)) best = name;
  return best;
}
