#!/usr/bin/env bash
# Integration tests (`npm run test:integration`) in two lanes, stopping at the first that fails:
#   1. most files, THAW_TEST_CONCURRENCY at a time (default 2): each test owns its topic, group, key prefix,
#      table, ports (0) and directories, and much of their time is spent waiting on the broker (group joins,
#      session timeouts), so two files overlap well on two cores;
#   2. the files listed below, one at a time: fault drills whose timing is the point (kill -9, outages,
#      rebalances, load shedding), and the ones that rebuild dist/ or bind the README's fixed ports.
# Arguments, if any, are passed to both `node --test` runs (e.g. --test-name-pattern).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERIAL=(
  test/integration/docs/readme-blocks.test.ts          # rebuilds dist/, binds port 8080 as the README does
  test/integration/cli/npx-signals.test.ts             # rebuilds dist/
  test/integration/cli/drain-timeout.test.ts           # drain deadline
  test/integration/cli/serve-processes.test.ts         # a server process killed and replaced under requests
  test/integration/cli/secure-transports.test.ts       # TLS handshakes and SASL on every connection, CPU-bound
  test/integration/consumers/worker-kill.test.ts       # kill -9 drills
  test/integration/cli/run-threads.test.ts
  test/integration/consumers/worker-user-kill.test.ts
  test/integration/consumers/worker-redis-kill.test.ts
  test/integration/consumers/worker-rebalance.test.ts
  test/integration/consumers/worker-outage.test.ts
  test/integration/consumers/worker-redis-loss.test.ts
  test/integration/streams/kafka-cluster-kill.test.ts
  test/integration/model-store/redis-outage.test.ts
  test/integration/serving/shedding.test.ts            # load shedding under a given load
  test/integration/serving/resource-manager.test.ts
  test/integration/trainers/distill-teach.test.ts      # kill -9 of a teacher
  test/integration/trainers/distill-resume.test.ts     # kill -9 of a learner
  test/integration/trainers/online-trainer-restart.test.ts
)

parallel=()
while IFS= read -r f; do
  skip=0
  for s in "${SERIAL[@]}"; do [[ "$f" == "$s" ]] && skip=1; done
  (( skip )) || parallel+=("$f")
done < <(find test/integration -name '*.test.ts' | sort)
for s in "${SERIAL[@]}"; do [[ -f "$s" ]] || { echo "scripts/test-integration.sh: $s is listed but missing" >&2; exit 1; }; done

node --import tsx --test --test-concurrency="${THAW_TEST_CONCURRENCY:-2}" "$@" "${parallel[@]}"
node --import tsx --test --test-concurrency=1 "$@" "${SERIAL[@]}"
