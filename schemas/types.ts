/**
 * The records that flow through Thaw, as TypeScript sees them after Avro decoding.
 * Features are categorical: field name -> list of tokens (e.g. { gender: ['F'], genres: ['Drama', 'War'] }).
 * Numeric features are bucketed into tokens by the producer. Models hash `field=token` into their tables.
 */
export type Features = Record<string, string[]>;

/** Which kind of entity a worker adapts. */
export type Side = 'user' | 'item';
export const SIDES: readonly Side[] = ['user', 'item'];

/** An ad or recommendation shown to a user (topic `thaw.impressions`). */
export interface Impression {
  /** Unique id; the click refers to it and it becomes the labelled event's id. */
  impressionId: string;
  /** Event time, unix milliseconds. */
  timeMs: number;
  userId: string;
  itemId: string;
  userFeatures: Features;
  itemFeatures: Features;
}

/** A click on an earlier impression (topic `thaw.clicks`). */
export interface Click {
  impressionId: string;
  timeMs: number;
}

/**
 * An impression with its outcome: 1 if clicked within the attribution window (or, for
 * MovieLens, rating >= 4), else 0. Topic `thaw.labelled`, re-keyed into `thaw.labelled.by-user`
 * and `thaw.labelled.by-item`.
 */
export interface LabelledEvent {
  eventId: string;
  timeMs: number;
  userId: string;
  itemId: string;
  label: 0 | 1;
  userFeatures: Features;
  itemFeatures: Features;
}

/** Profile of a user or item (topics `thaw.profiles.user`, `thaw.profiles.item`). */
export interface EntityProfile {
  side: Side;
  entityId: string;
  timeMs: number;
  features: Features;
}

/** The id of the entity an event belongs to on one side. */
export function entityIdOf(event: LabelledEvent, side: Side): string {
  return side === 'user' ? event.userId : event.itemId;
}
