/**
 * Where a `thaw serve` process spends its time, from a V8 CPU profile (`--cpu-prof`, which the
 * serving bench's `--profile DIR` turns on for its server processes):
 *
 *   node --import tsx bench/serving/profile-summary.ts DIR/CPU.*.cpuprofile [--top 25]
 *
 * Every sample is given to ONE stage: the innermost frame on its stack that names a stage (the FM
 * kernel inside the respond stage counts as the kernel; ioredis under the fetch stage counts as the
 * Redis client), else the package or Node internals its leaf frame belongs to. Prints the stages'
 * shares of the busy time (idle excluded), then the functions with the most self time.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Stage markers, tested from the leaf up: the first frame that matches names the sample's stage. */
const FRAME_STAGES: readonly [string, (f: CallFrame) => boolean][] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['model: FM kernel + features', (f) => f.url.endsWith('serving/fm-kernel.ts') || f.url.endsWith('models/features.ts') || f.url.endsWith('models/fm.ts')],
  ['model: safeguard mix', (f) => f.url.endsWith('consumers/safeguard.ts')],
  ['metrics (prom-client)', (f) => f.url.includes('/prom-client/')],
  ['redis client (ioredis, parser)', (f) => f.url.includes('/ioredis/') || f.url.includes('/redis-parser/') || f.url.includes('/denque/') || f.url.includes('/standard-as-callback/')],
  ['validate (request.ts)', (f) => f.url.endsWith('serving/request.ts')],
  ['JSON parse (body)', (f) => f.url.includes('/secure-json-parse/') || (f.functionName === 'parse' && f.url === '')],
  ['respond: body', (f) => f.url.endsWith('serving/response.ts') || (f.url.endsWith('serving/pipeline.ts') && (f.functionName.includes('respond') || f.functionName.includes('provenance')))],
  [
    'fetch: keys, cache, fill',
    (f) =>
      f.url.endsWith('serving/state-cache.ts') ||
      f.url.endsWith('model-store/keys.ts') ||
      f.url.endsWith('model-store/state-codec.ts') ||
      (f.url.endsWith('serving/pipeline.ts') && /startFetch|fill|readSafeguards|flushFetch/.test(f.functionName)),
  ],
  ['pipeline: other (queues, admission, model loop)', (f) => f.url.includes('/serving/')],
  ['fastify (router, hooks, reply)', (f) => /\/(fastify|find-my-way|avvio|light-my-request|@fastify|fast-json-stringify|process-warning|toad-cache|rfdc|abstract-logging)\//.test(f.url)],
  [
    'node http / net / streams',
    (f) => /^node:(_http|http|net|stream|internal\/(streams|http|stream_base|net|timers|process\/task_queues|async_hooks|event_target|perf))/.test(f.url) || f.url.startsWith('node:events'),
  ],
];

function stageOf(stack: readonly CallFrame[]): string {
  for (const frame of stack) {
    for (const [name, test] of FRAME_STAGES) if (test(frame)) return name;
  }
  const leaf = stack[0];
  if (leaf === undefined) return 'other';
  if (leaf.functionName === '(program)') return 'V8/native (program)';
  if (leaf.url === '') return `native: ${leaf.functionName || '(anonymous)'}`;
  return 'other';
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
  const top = Number(values.top);
  for (const path of positionals) {
    const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
    const byId = new Map<number, ProfileNode>();
    const parent = new Map<number, number>();
    for (const n of profile.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    const stageUs = new Map<string, number>();
    const selfUs = new Map<string, number>();
    let idleUs = 0;
    let busyUs = 0;
    for (let s = 0; s < profile.samples.length; s++) {
      const id = profile.samples[s] ?? 0;
      const dt = profile.timeDeltas[s + 1] ?? 0;
      const leaf = byId.get(id);
      if (leaf === undefined) continue;
      if (leaf.callFrame.functionName === '(idle)') {
        idleUs += dt;
        continue;
      }
      busyUs += dt;
      const stack: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const node = byId.get(at);
        if (node !== undefined) stack.push(node.callFrame);
      }
      const stage = stageOf(stack);
      stageUs.set(stage, (stageUs.get(stage) ?? 0) + dt);
      const f = leaf.callFrame;
      const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/wt-[^/]+\//, '')}:${f.lineNumber + 1}`;
      selfUs.set(name, (selfUs.get(name) ?? 0) + dt);
    }
    const wall = (profile.endTime - profile.startTime) / 1e6;
    const pct = (us: number): string => ((100 * us) / Math.max(1, busyUs)).toFixed(1);
    process.stdout.write(`\n${path}\nwall ${wall.toFixed(1)} s, busy ${(busyUs / 1e6).toFixed(1)} s, idle ${(idleUs / 1e6).toFixed(1)} s\n\n| stage | share of busy % | s |\n|---|--:|--:|\n`);
    for (const [name, us] of [...stageUs].sort((a, b) => b[1] - a[1])) process.stdout.write(`| ${name} | ${pct(us)} | ${(us / 1e6).toFixed(2)} |\n`);
    process.stdout.write(`\n| self time: function | % |\n|---|--:|\n`);
    for (const [name, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`| ${name} | ${pct(us)} |\n`);
  }
}

main();
