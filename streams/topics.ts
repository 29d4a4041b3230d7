/** Topic names of the Thaw pipeline (see docs/architecture.md). */
import type { Side } from '../schemas/types.js';

export const TOPICS = {
  impressions: 'thaw.impressions',
  clicks: 'thaw.clicks',
  labelled: 'thaw.labelled',
  byUser: 'thaw.labelled.by-user',
  byItem: 'thaw.labelled.by-item',
  profilesUser: 'thaw.profiles.user',
  profilesItem: 'thaw.profiles.item',
  deadLetters: 'thaw.dead-letters',
  releases: 'thaw.releases',
  /** Teacher scores of labelled events (thaw distill teach → thaw distill learn). */
  softLabels: 'thaw.soft-labels',
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

/** The labelled topic partitioned by the entity of `side`: a worker adapting users reads `by-user`. */
export function labelledTopicFor(side: Side): TopicName {
  return side === 'user' ? TOPICS.byUser : TOPICS.byItem;
}

/** The profile topic of `side`. */
export function profileTopicFor(side: Side): TopicName {
  return side === 'user' ? TOPICS.profilesUser : TOPICS.profilesItem;
}
