/**
 * Why the overload rule's goodput can be out of reach whatever admission does: refusing costs CPU
 * too (Node's HTTP parser reads the request, a 503 is written). The serving bench solves the
 * server's CPU per answer `s` and per refusal `r` from two of its rows (each row's CPU is
 * answers·s + refusals·r) and bounds what one process can answer at f × capacity.
 */

/** One measured row: answers and refusals per second, and the server's CPU (cores busy). */
export interface CpuRow {
  okPerSec: number;
  shedPerSec: number;
  cpuCores: number;
}

/** CPU per answer and per refusal (µs) from two rows; undefined when they do not determine both (proportional rows, a negative cost). */
export function cpuCosts(a: CpuRow, b: CpuRow): { answerUs: number; refusalUs: number } | undefined {
  const det = a.okPerSec * b.shedPerSec - b.okPerSec * a.shedPerSec;
  if (Math.abs(det) < 1e-6 * Math.max(a.okPerSec * b.shedPerSec, b.okPerSec * a.shedPerSec, 1)) return undefined;
  const answerUs = (1e6 * (a.cpuCores * b.shedPerSec - b.cpuCores * a.shedPerSec)) / det;
  const refusalUs = (1e6 * (a.okPerSec * b.cpuCores - b.okPerSec * a.cpuCores)) / det;
  return answerUs > 0 && refusalUs > 0 ? { answerUs, refusalUs } : undefined;
}

/**
 * The largest share of capacity one core can answer at `factor` × capacity when a refusal costs
 * `rho` = r / s of an answer: answering g·C costs g·C·s + (factor − g)·C·r ≤ 1 with C = 1/s, so
 * g ≤ (1 − factor·ρ) / (1 − ρ) (0 when refusals alone fill the core).
 */
export function goodputBound(factor: number, rho: number): number {
  return Math.max(0, (1 - factor * rho) / (1 - rho));
}

/** The largest ρ at which `share` of capacity is reachable at `factor` × capacity. */
export function rhoFor(factor: number, share: number): number {
  return (1 - share) / (factor - share);
}
