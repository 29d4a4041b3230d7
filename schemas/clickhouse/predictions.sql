-- Prequential prediction log (generated from analytics/ddl.ts; test/unit/analytics/ddl.test.ts keeps them equal).
-- Runs on ClickHouse 18.16 and chDB 26.x. Redeliveries of one (namespace, adapter, side, event_id) are
-- collapsed by ReplacingMergeTree eventually and de-duplicated exactly by the queries (GROUP BY on that key, analytics/dedup.ts; no FINAL).
-- Partitioned by namespace, not by event time (backfills spanning decades; docs/analytics.md).
CREATE DATABASE IF NOT EXISTS thaw;

CREATE TABLE IF NOT EXISTS thaw.predictions
(
    event_id      String,
    event_time    DateTime,
    event_time_ms UInt64,
    day           Date,
    side          Enum8('user' = 1, 'item' = 2),
    entity_id     String,
    prior_count   UInt32,
    bucket        String,
    score         Float32,
    label         UInt8,
    adapter       String,
    release       String,
    namespace     String,
    inserted_at   DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY namespace
ORDER BY (namespace, adapter, side, event_id);
