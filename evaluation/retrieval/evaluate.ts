/**
 * Scores one retriever on a split: for every evaluated user, exact top-100 over the whole catalogue
 * (the user's training items excluded), then recall@10/@50/@100 and NDCG@50 of the user's test
 * positives, averaged over users. recall@50Cold (recall@50Warm) is recall@50 of the cold (warm)
 * positives alone, averaged over the users that have at least one; the ranking is the same.
 */
import { recallAtK, ndcgAtK } from '../../retrieval/metrics.js';
import { topK } from '../../retrieval/exact-search.js';
import type { Retriever } from '../../retrieval/types.js';
import type { RetrievalSplit } from './split.js';

/** One row of the protocol's output (the JSON shape). */
export interface RetrievalRow {
  model: string;
  'recall@10': number;
  'recall@50': number;
  'recall@100': number;
  'ndcg@50': number;
  'recall@50Cold': number;
  'recall@50Warm': number;
}

/** Counts behind a row (how many users each mean is over). */
export interface RetrievalCounts {
  users: number;
  usersWithCold: number;
  usersWithWarm: number;
}

/** Evaluates `retriever` on `split` (see the file comment). */
export function evaluateRetriever(retriever: Retriever, split: RetrievalSplit): { row: RetrievalRow; counts: RetrievalCounts } {
  const scores = new Float32Array(split.items.length);
  let r10 = 0;
  let r50 = 0;
  let r100 = 0;
  let n50 = 0;
  let cold = 0;
  let warm = 0;
  let nCold = 0;
  let nWarm = 0;
  for (const user of split.testUsers) {
    retriever.score({ features: user.features, history: user.history }, scores);
    const ranked = topK(scores, 100, user.seen);
    r10 += recallAtK(ranked, user.relevant, 10);
    r50 += recallAtK(ranked, user.relevant, 50);
    r100 += recallAtK(ranked, user.relevant, 100);
    n50 += ndcgAtK(ranked, user.relevant, 50);
    const coldRel = new Set<number>();
    const warmRel = new Set<number>();
    for (const i of user.relevant) (split.items[i]?.cold ? coldRel : warmRel).add(i);
    if (coldRel.size > 0) {
      cold += recallAtK(ranked, coldRel, 50);
      nCold++;
    }
    if (warmRel.size > 0) {
      warm += recallAtK(ranked, warmRel, 50);
      nWarm++;
    }
  }
  const n = Math.max(1, split.testUsers.length);
  return {
    row: {
      model: retriever.name,
      'recall@10': r10 / n,
      'recall@50': r50 / n,
      'recall@100': r100 / n,
      'ndcg@50': n50 / n,
      'recall@50Cold': nCold > 0 ? cold / nCold : 0,
      'recall@50Warm': nWarm > 0 ? warm / nWarm : 0,
    },
    counts: { users: split.testUsers.length, usersWithCold: nCold, usersWithWarm: nWarm },
  };
}

/** The rows as a Markdown table (4 decimals). */
export function formatRetrievalTable(rows: readonly RetrievalRow[]): string {
  const cols = ['recall@10', 'recall@50', 'recall@100', 'ndcg@50', 'recall@50Cold', 'recall@50Warm'] as const;
  const out = [`| model | ${cols.join(' | ')} |`, `|---|${cols.map(() => '--:').join('|')}|`];
  for (const r of rows) out.push(`| ${r.model} | ${cols.map((c) => r[c].toFixed(4)).join(' | ')} |`);
  return out.join('\n');
}
