/**
 * The two-stage path's series on the server's `/metrics` registry (serving/metrics.ts): the time of
 * each stage of a POST /v1/recommend request, and its answers by HTTP status.
 *   retrieve  the user tower and the ANN search of the k candidates
 *   state     from admission to the candidates' states read: the fetch queue and the state read
 *   rank      from the states read to the scores: the model queue and the scoring
 *   respond   sorting the k scores and building the body of the top n
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export const RECOMMEND_STAGES = ['retrieve', 'state', 'rank', 'respond'] as const;
export type RecommendStage = (typeof RECOMMEND_STAGES)[number];

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** What the route reports. */
export interface RecommendMetrics {
  /** A stage of one request took `ms`. */
  stage(stage: RecommendStage, ms: number): void;
  /** A request was answered with `status`. */
  answered(status: string): void;
}

/** Registers the series on `registry`; `also` is told every stage's time too (ms). */
export function registerRecommendMetrics(registry: Registry, also?: (stage: RecommendStage, ms: number) => void): RecommendMetrics {
  const registers = [registry];
  const seconds = new Histogram({
    name: 'thaw_serve_recommend_stage_seconds',
    help: 'Time of a POST /v1/recommend request per stage: retrieve (user tower, ANN search), state (admission to states read), rank (states read to scores), respond (sort, body)',
    labelNames: ['stage'],
    buckets: BUCKETS,
    registers,
  });
  const requests = new Counter({ name: 'thaw_serve_recommend_requests_total', help: 'POST /v1/recommend requests by HTTP status', labelNames: ['status'], registers });
  return {
    stage: (stage, ms) => {
      seconds.observe({ stage }, ms / 1000);
      also?.(stage, ms);
    },
    answered: (status) => requests.inc({ status }),
  };
}
