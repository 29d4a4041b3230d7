#!/usr/bin/env bash
# Full test run (`npm run test:all`, also what CI runs through .ci/run):
#   0. Debian packages the tests need when missing (apt): docker-compose, python3-venv, chromium, and a
#      C++ toolchain for hnswlib-node (an optional dependency npm builds from source; the ANN index needs it)
#   1. npm install when node_modules is missing or older than package-lock.json (not `npm ci`: see README)
#   2. scripts/services.sh up  (Kafka, Redis, ClickHouse on local ports; installs what is missing)
#   3. export the services' addresses (scripts/services.sh env)
#   4. typecheck, format check (prettier), lint, unit tests, integration tests -- stopping at the first failure
# Services are left running for the next run unless THAW_SERVICES_KEEP=0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n[test-all] ==> %s\n' "$*" >&2; }
die() { printf '[test-all] ERROR: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "Node.js >= 20 is required (node not found)"
command -v npm >/dev/null 2>&1 || die "npm is required (npm not found)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
(( node_major >= 20 )) || die "Node.js >= 20 is required (found $(node --version))"

apt_updated=0
# apt_install PKG...: Debian packages the tests need (apt-get update once per run).
apt_install() {
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  if (( ! apt_updated )); then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 \
      || die "apt-get update failed"
    apt_updated=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# docker-compose is used by the integration tests to validate docker-compose.yml.
if ! command -v docker-compose >/dev/null 2>&1; then
  step "installing docker-compose (apt)"
  apt_install docker-compose
fi

# The vw peer's test installs Vowpal Wabbit from PyPI into a venv (evaluation/peers/python-env.ts):
# python3 with venv and ensurepip (Debian splits them into python3-venv). Honours THAW_PYTHON.
if ! "${THAW_PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  step "installing python3-venv (apt)"
  apt_install python3 python3-venv
fi

# The dashboard's test drives a headless Chromium through playwright-core (test/integration/dashboard/):
# Debian's chromium, or the binary THAW_CHROMIUM names.
if [[ ! -x "${THAW_CHROMIUM:-/usr/bin/chromium}" ]]; then
  step "installing chromium (apt)"
  apt_install chromium
fi

# hnswlib-node (retrieval's ANN index) is built from source by npm install: g++ and make. It is an optional
# dependency, so `npm install` alone still succeeds without them; the tests need it.
if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  step "installing g++ and make for hnswlib-node (apt)"
  apt_install g++ make
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  step "npm install"
  npm install --no-audit --no-fund || die "npm install failed"
fi

if [[ "${THAW_SERVICES_KEEP:-1}" == 0 ]]; then
  trap 'step "stopping services (THAW_SERVICES_KEEP=0)"; bash "$ROOT/scripts/services.sh" down || true' EXIT
fi

step "starting services"
bash scripts/services.sh up || die "services did not start"
while IFS= read -r kv; do
  [[ -n "$kv" ]] && export "${kv?}"
done < <(bash scripts/services.sh env)
env | grep '^THAW_' | sed -E 's/^([A-Z_]*PASSWORD)=.*/\1=***/' | sort >&2   # passwords masked

for script in typecheck format:check lint test:unit test:integration; do
  step "npm run $script"
  npm run "$script" || die "npm run $script failed"
done

step "all checks passed"
