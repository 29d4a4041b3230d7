-- Warm-up curve query template (generated from analytics/curves.ts curveSql() for thaw.predictions, no filters).
-- Per (adapter, side, release, namespace, bucket): events, CTR, AUC (Mann-Whitney, ties = 1/2), log loss.
-- Add filters as a WHERE after the innermost FROM (namespace, adapter, side, release, event_time_ms range).
SELECT
    adapter, side, release, namespace, bucket,
    n,
    pos / n AS ctr,
    if(pos = 0 OR neg = 0, nan,
       arraySum(arrayMap((ps, cum, ng) -> ps * ((cum - ng) + ng / 2), pos_by_score, arrayCumSum(neg_by_score), neg_by_score))
       / (pos * neg)) AS auc,
    ll_sum / n AS log_loss
FROM
(
    SELECT
        adapter, side, release, namespace, bucket,
        sum(n_s) AS n,
        sum(pos_s) AS pos,
        n - pos AS neg,
        sum(ll_s) AS ll_sum,
        arraySort((x, s) -> s, groupArray(pos_s), groupArray(score)) AS pos_by_score,
        arraySort((x, s) -> s, groupArray(n_s - pos_s), groupArray(score)) AS neg_by_score
    FROM
    (
        SELECT adapter, side, release, namespace, bucket, score, count() AS n_s, sum(label) AS pos_s, sum(ll) AS ll_s
        FROM
        (
            SELECT
                adapter, side, latest_release AS release, namespace, multiIf(latest_prior_count <= 0, '0', latest_prior_count <= 2, '1-2', latest_prior_count <= 5, '3-5', latest_prior_count <= 10, '6-10', latest_prior_count <= 20, '11-20', latest_prior_count <= 50, '21-50', '51+') AS bucket, latest_day AS day,
                latest_score AS score, latest_label AS label,
                -(latest_label * log(least(greatest(toFloat64(latest_score), 1e-7), 0.9999999)) + (1 - latest_label) * log(1 - least(greatest(toFloat64(latest_score), 1e-7), 0.9999999))) AS ll
            FROM
            (
            SELECT namespace, adapter, side, event_id, argMax(release, inserted_at) AS latest_release, argMax(day, inserted_at) AS latest_day, argMax(prior_count, inserted_at) AS latest_prior_count, argMax(score, inserted_at) AS latest_score, argMax(label, inserted_at) AS latest_label
            FROM thaw.predictions
            GROUP BY namespace, adapter, side, event_id
            )
        )
        GROUP BY adapter, side, release, namespace, bucket, score
    )
    GROUP BY adapter, side, release, namespace, bucket
)
ORDER BY adapter, side, release, namespace, indexOf(['0', '1-2', '3-5', '6-10', '11-20', '21-50', '51+', '1-5'], bucket)
SETTINGS max_bytes_before_external_group_by = 1000000000;
