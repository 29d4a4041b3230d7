#!/usr/bin/env bash
# Local service stack for Thaw: Kafka (KRaft, single node), Redis, ClickHouse.
#
# Usage:
#   scripts/services.sh up      [kafka|redis|clickhouse ...]   install if missing, start, wait until ready
#   scripts/services.sh down    [kafka|redis|clickhouse ...]   stop (SIGTERM, then SIGKILL after a grace period)
#   scripts/services.sh start   NAME...                        same as up, for the named services
#   scripts/services.sh stop    NAME...                        same as down, for the named services
#   scripts/services.sh restart [NAME...]                      down + up
#   scripts/services.sh status  [NAME...]                      one line per service; exit 3 if any is down
#   scripts/services.sh env                                    KEY=VALUE lines: export $(scripts/services.sh env)
#   scripts/services.sh install [NAME...]                      only install what is missing (apt, Kafka jars)
#   scripts/services.sh logs    NAME [LINES]                   tail of the service's log
#   scripts/services.sh env-secure                             the THAW_* lines that point thaw at the secured instances
#   scripts/services.sh up|down|status|env|logs clickhouse-shards   2 ClickHouse shards (services.d/clickhouse-shards.sh)
#
# Extra services, never started by a bare `up` (scripts/services.d/*.sh, each documents itself):
#   kafka-cluster   3-node KRaft Kafka cluster (scripts/services.d/kafka-cluster.sh)
#   redis-cluster   3-master Redis Cluster (scripts/services.d/redis-cluster.sh)
#
# No name means all three. Everything is idempotent: `up` on a running service
# only re-checks that it answers; `down` on a stopped one is a no-op. Secured
# instances (kafka-secure, redis-secure, clickhouse-secure) start only by name:
# scripts/services.d/secure.sh says how they are secured and configured.
#
# Environment (defaults in brackets):
#   THAW_KAFKA_PORT [19092]  THAW_KAFKA_CONTROLLER_PORT [19093]
#   THAW_REDIS_PORT [16379]
#   THAW_REDIS_CLUSTER_PORT [17001]  (redis-cluster: see scripts/services.d/redis-cluster.sh)
#   THAW_CLICKHOUSE_HTTP_PORT [18123]  THAW_CLICKHOUSE_TCP_PORT [19000]
#   THAW_CLICKHOUSE_SHARD{1,2}_{HTTP,TCP}_PORT, THAW_CLICKHOUSE_CLUSTER_NAME: clickhouse-shards (services.d/)
#   THAW_HOME [$HOME/.cache/thaw]        Kafka jars go to $THAW_HOME/kafka/lib
#   THAW_SERVICES_DIR [$THAW_HOME/services]  one subdir per service: config, data, logs, pid
#   THAW_SERVICES_TIMEOUT [120]          seconds to wait for a service to answer
#   KAFKA_HEAP_OPTS / THAW_KAFKA_HEAP [-Xmx512m -Xms128m]
#
# Services run as the current user, in their own session (setsid), so they
# outlive the shell that started them. Data and logs are kept across stop/start.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
THAW_HOME="${THAW_HOME:-$HOME/.cache/thaw}"
SERVICES_DIR="${THAW_SERVICES_DIR:-$THAW_HOME/services}"
KAFKA_LIB="$THAW_HOME/kafka/lib"
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_PORT="${THAW_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${THAW_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${THAW_REDIS_PORT:-16379}"
CH_HTTP_PORT="${THAW_CLICKHOUSE_HTTP_PORT:-18123}"
CH_TCP_PORT="${THAW_CLICKHOUSE_TCP_PORT:-19000}"
TIMEOUT="${THAW_SERVICES_TIMEOUT:-120}"
KAFKA_HEAP="${THAW_KAFKA_HEAP:-${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m}}"
HOST=127.0.0.1

ALL_SERVICES=(kafka redis clickhouse)
# Filled by scripts/services.d/*.sh: services that a name selects but a bare `up` does not.
EXTRA_SERVICES=()

# Optional services (not part of the default `up`), one file each.
for _f in "$SCRIPT_DIR"/services.d/*.sh; do
  # shellcheck disable=SC1090
  [[ -f "$_f" ]] && source "$_f"
done
unset _f


log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers ---

port_open() { # port -> 0 if something accepts TCP connections on 127.0.0.1:port
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

now() { date +%s; }

svc_dir() { printf '%s/%s' "$SERVICES_DIR" "$1"; }
pid_file() { printf '%s/%s.pid' "$(svc_dir "$1")" "$1"; }

# Token that must appear in /proc/PID/cmdline for the pid to be ours (guards
# against stale pid files whose number was reused by another process).
cmd_token() {
  case "$1" in
    kafka) printf 'kafka.Kafka' ;;
    redis) printf 'redis-server' ;;
    clickhouse) printf 'clickhouse' ;;
    *-secure) secure_cmd_token "$1" ;;
  esac
}

svc_pid() { # name -> prints pid and returns 0 if the managed process is alive
  local f pid
  f="$(pid_file "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(cmd_token "$1")" || return 1
  printf '%s' "$pid"
}

svc_port() {
  case "$1" in
    kafka) printf '%s' "$KAFKA_PORT" ;;
    redis) printf '%s' "$REDIS_PORT" ;;
    clickhouse) printf '%s' "$CH_HTTP_PORT" ;;
    *-secure) secure_svc_port "$1" ;;
  esac
}

svc_log() {
  case "$1" in
    kafka) printf '%s/logs/kafka.log' "$(svc_dir kafka)" ;;
    redis) printf '%s/logs/redis.log' "$(svc_dir redis)" ;;
    clickhouse) printf '%s/logs/clickhouse-server.log' "$(svc_dir clickhouse)" ;;
    *-secure) secure_svc_log "$1" ;;
  esac
}

# Is the service answering its protocol (not just the TCP port)?
healthy() {
  case "$1" in
    kafka)
      port_open "$KAFKA_PORT" && port_open "$KAFKA_CONTROLLER_PORT" ;;
    redis)
      [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]] ;;
    clickhouse)
      [[ "$(curl -s -m 2 "http://$HOST:$CH_HTTP_PORT/ping" 2>/dev/null)" == Ok* ]] ;;
    *-secure) secure_healthy "$1" ;;
  esac
}

show_log_tail() {
  local name="$1" f
  for f in "$(svc_log "$name")" "$(svc_dir "$name")/logs/"*.err.log "$(svc_dir "$name")/logs/stdout.log"; do
    [[ -s "$f" ]] || continue
    printf '[services] ---- last lines of %s ----\n' "$f" >&2
    tail -n 30 "$f" >&2 || true
  done
}

rotate_if_big() { # file: keep logs, but do not let an appended log grow forever
  local f="$1"
  if [[ -f "$f" ]] && (( $(stat -c %s "$f") > 50 * 1024 * 1024 )); then
    mv -f "$f" "$f.1"
  fi
}

# Daemons must not inherit the lock's descriptor (they would hold it forever):
# every spawn closes it with {LOCK_FD}>&-.
LOCK_FD=
# Per-service lock so concurrent invocations (tests restarting Redis while
# another shell runs `up`) do not race on the same pid file.
with_lock() { # name cmd args...
  local name="$1"; shift
  mkdir -p "$(svc_dir "$name")"
  exec {LOCK_FD}>"$(svc_dir "$name")/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 "$LOCK_FD" || die "could not lock $name (another services.sh is busy)"
  fi
  local rc=0
  "$@" || rc=$?
  exec {LOCK_FD}>&-
  LOCK_FD=
  return "$rc"
}

# ---------------------------------------------------------------- install ---

APT_UPDATED=0
apt_install() { # packages...
  (( $# )) || return 0
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: $*"
  local aptopts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  if (( APT_UPDATED == 0 )); then
    log "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" update -qq >&2 \
      || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" install -y -qq \
    --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

install_pkgs_for() { # services... -> apt-get install whatever binaries are missing
  local pkgs=() s
  command -v curl >/dev/null 2>&1 || pkgs+=(curl ca-certificates)
  command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
  for s in "$@"; do
    case "$s" in
      kafka)
        command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
        if ! kafka_lib_ok; then command -v mvn >/dev/null 2>&1 || pkgs+=(maven); fi ;;
      redis|redis-cluster)
        command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 \
          || pkgs+=(redis-server redis-tools) ;;
      clickhouse)
        command -v clickhouse-server >/dev/null 2>&1 || pkgs+=(clickhouse-server clickhouse-client) ;;
      *-secure) secure_pkgs "$s" ;;
    esac
  done
  apt_install "${pkgs[@]}"
}

pom_stamp() { sha256sum "$KAFKA_POM" | cut -d' ' -f1; }

kafka_lib_ok() {
  compgen -G "$KAFKA_LIB/kafka_2.13-*.jar" >/dev/null \
    && [[ -f "$KAFKA_LIB/.pom.sha256" ]] \
    && [[ "$(cat "$KAFKA_LIB/.pom.sha256")" == "$(pom_stamp)" ]]
}

install_kafka_lib() {
  kafka_lib_ok && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed to fetch the Kafka jars)"
  [[ -f "$KAFKA_POM" ]] || die "missing $KAFKA_POM"
  local tmp="$KAFKA_LIB.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "fetching Kafka jars with Maven into $KAFKA_LIB (first run only)"
  if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$tmp.mvn.log" 2>&1; then
    tail -n 40 "$tmp.mvn.log" >&2
    rm -rf "$tmp" "$tmp.mvn.log"
    die "mvn dependency:copy-dependencies failed for $KAFKA_POM"
  fi
  rm -f "$tmp.mvn.log"
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "Maven did not produce kafka_2.13 jar"; }
  pom_stamp >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIB"
  mkdir -p "$(dirname "$KAFKA_LIB")"
  mv "$tmp" "$KAFKA_LIB"
  log "Kafka jars: $(basename "$(compgen -G "$KAFKA_LIB/kafka_2.13-*.jar")")"
}

install_for() { # services...
  install_pkgs_for "$@"
  local s
  for s in "$@"; do
    [[ "$s" == kafka || "$s" == kafka-secure ]] && with_lock kafka install_kafka_lib
  done
  return 0
}

# ---------------------------------------------------------------- configs ---

write_kafka_config() {
  local d; d="$(svc_dir kafka)"
  mkdir -p "$d/data" "$d/logs"
  cat >"$d/server.properties" <<EOF
# Generated by scripts/services.sh -- edits are overwritten on start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Controller and broker share one JVM here: on a starved 2-core host a pause past the default 9 s
# session made the controller fence its own broker (every partition leaderless, coordinators
# reloaded) in the middle of a test. A single node has no other broker to fail over to anyway.
broker.session.timeout.ms=30000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
log.retention.check.interval.ms=300000
EOF
  cat >"$d/log4j2.properties" <<'EOF'
# Generated by scripts/services.sh
status = warn
name = thaw-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
}

write_redis_config() {
  local d; d="$(svc_dir redis)"
  mkdir -p "$d/data" "$d/logs"
  cat >"$d/redis.conf" <<EOF
# Generated by scripts/services.sh -- edits are overwritten on start.
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize no
pidfile $d/redis.pid
logfile $d/logs/redis.log
loglevel notice
dir $d/data
dbfilename dump.rdb
save 60 1
save 300 100
appendonly yes
appendfilename appendonly.aof
appendfsync everysec
shutdown-on-sigterm save
maxclients 2000
EOF
}

write_clickhouse_config() { # [name: clickhouse]
  local d; d="$(svc_dir "${1:-clickhouse}")"
  mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/logs"
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh; edits are overwritten on start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$d/logs/clickhouse-server.log</log>
        <errorlog>$d/logs/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <listen_host>$HOST</listen_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/tmp/</tmp_path>
    <user_files_path>$d/user_files/</user_files_path>
    <format_schema_path>$d/format_schemas/</format_schema_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF
  cat >"$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::/0</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

# ------------------------------------------------------------ start/stop ---

kafka_format_if_needed() {
  local d; d="$(svc_dir kafka)"
  [[ -f "$d/data/meta.properties" ]] && return 0
  local cid
  if [[ -s "$d/cluster.id" ]]; then
    cid="$(cat "$d/cluster.id")"
  else
    # 16 random bytes, URL-safe base64 without padding = a Kafka Uuid string.
    cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    printf '%s' "$cid" >"$d/cluster.id"
  fi
  log "kafka: formatting KRaft storage (cluster id $cid)"
  if ! java -Dlog4j2.configurationFile="$d/log4j2.properties" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool \
      format --cluster-id="$cid" -c "$d/server.properties" --ignore-formatted >>"$d/logs/format.log" 2>&1 {LOCK_FD}>&-; then
    tail -n 30 "$d/logs/format.log" >&2
    die "kafka: kafka-storage format failed"
  fi
}

spawn() { # name -> starts the process (does not wait)
  local name="$1" d; d="$(svc_dir "$name")"
  local logf; logf="$(svc_log "$name")"
  mkdir -p "$d/logs"
  case "$name" in
    kafka)
      write_kafka_config
      kafka_format_if_needed
      rotate_if_big "$logf"
      printf '==== %s services.sh: starting kafka on %s:%s ====\n' "$(date -Is)" "$HOST" "$KAFKA_PORT" >>"$logf"
      # shellcheck disable=SC2086
      nohup setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$d/log4j2.properties" -Dkafka.logs.dir="$d/logs" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$d/server.properties" </dev/null >>"$logf" 2>&1 {LOCK_FD}>&- &
      echo $! >"$(pid_file kafka)"
      ;;
    redis)
      write_redis_config
      rotate_if_big "$logf"
      rm -f "$(pid_file redis)"
      nohup setsid redis-server "$d/redis.conf" </dev/null >>"$d/logs/stdout.log" 2>&1 {LOCK_FD}>&- &
      echo $! >"$(pid_file redis)"
      ;;
    clickhouse)
      write_clickhouse_config
      rm -f "$(pid_file clickhouse)"
      # Run from the service dir: 18.x writes preprocessed configs next to the config.
      (cd "$d" && exec nohup setsid clickhouse-server --config-file="$d/config.xml" \
        </dev/null >>"$d/logs/stdout.log" 2>&1) {LOCK_FD}>&- &
      echo $! >"$(pid_file clickhouse)"
      ;;
    *-secure) secure_spawn "$name" ;;
  esac
}

# Has the Kafka process started by the last `start` logged that it is serving?
# Looks only after the last start marker that spawn() writes into the log.
kafka_ready_in_log() {
  local logf; logf="$(svc_log kafka)"
  [[ -f "$logf" ]] || return 1
  # (process substitution, not a pipe: awk exits early and pipefail would see tac's SIGPIPE)
  awk '/services\.sh: starting kafka/ { exit } /Kafka Server started|Transitioning from RECOVERY to RUNNING/ { found = 1; exit } END { exit !found }' \
    < <(tac "$logf")
}

wait_ready() { # name
  local name="$1" deadline pid
  deadline=$(( $(now) + TIMEOUT ))
  while :; do
    if ! pid="$(svc_pid "$name")"; then
      log "$name: process exited during startup"
      show_log_tail "$name"
      return 1
    fi
    if healthy "$name"; then
      if [[ "$name" != kafka ]] || kafka_ready_in_log; then
        log "$name: up on $HOST:$(svc_port "$name") (pid $pid)"
        return 0
      fi
    fi
    if (( $(now) >= deadline )); then
      log "$name: not ready after ${TIMEOUT}s"
      show_log_tail "$name"
      return 1
    fi
    sleep 0.3
  done
}

start_one() { # name -> spawn unless already running (does not wait)
  local name="$1" pid
  if pid="$(svc_pid "$name")"; then
    log "$name: already running (pid $pid)"
    return 0
  fi
  if [[ "$name" == kafka ]]; then
    if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
      die "kafka: port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is taken by a process not managed here"
    fi
  elif port_open "$(svc_port "$name")"; then
    die "$name: port $(svc_port "$name") is taken by a process not managed here (see THAW_*_PORT)"
  fi
  log "$name: starting on $HOST:$(svc_port "$name")"
  spawn "$name"
}

stop_one() { # name (under lock)
  local name="$1" pid grace
  case "$name" in kafka|kafka-secure) grace=45 ;; clickhouse) grace=30 ;; *) grace=20 ;; esac
  if ! pid="$(svc_pid "$name")"; then
    rm -f "$(pid_file "$name")"
    if port_open "$(svc_port "$name")"; then
      log "$name: not managed here, but port $(svc_port "$name") is in use; leaving it alone"
    else
      log "$name: already stopped"
    fi
    return 0
  fi
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(now) + grace ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(now) >= deadline )); then
      log "$name: still alive after ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      # Kafka is the process-group leader (setsid): also kill stragglers.
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  # Wait for the port to be released so that an immediate start succeeds.
  deadline=$(( $(now) + 10 ))
  while port_open "$(svc_port "$name")" && (( $(now) < deadline )); do sleep 0.2; done
  rm -f "$(pid_file "$name")"
  log "$name: stopped"
}

# --------------------------------------------------------- extra services ---

# A file of scripts/services.d/ (sourced at the top) that defines ext_<name>_{install,up,down,
# status,env,logs} (dashes become underscores) and adds its name to EXTRA_SERVICES is driven by
# the commands below; secure.sh and clickhouse-shards.sh hook in by their own names instead.

is_extra() { local e; for e in "${EXTRA_SERVICES[@]}"; do [[ "$e" == "$1" ]] && return 0; done; return 1; }
ext_call() { # name action args...
  local name="$1" action="$2"; shift 2
  "ext_${name//-/_}_${action}" "$@"
}

# -------------------------------------------------------------- commands ---

parse_names() { # args -> NAMES array (validated), default all
  NAMES=()
  local a
  if (( $# == 0 )); then NAMES=("${ALL_SERVICES[@]}"); return; fi
  for a in "$@"; do
    case "$a" in
      kafka|redis|clickhouse|kafka-secure|redis-secure|clickhouse-secure) NAMES+=("$a") ;;
      all) NAMES=("${ALL_SERVICES[@]}"); return ;;
      clickhouse-shards) die "clickhouse-shards is managed on its own: services.sh up|down|status clickhouse-shards" ;;
      *) is_extra "$a" && { NAMES+=("$a"); continue; }
         die "unknown service '$a' (expected: kafka redis clickhouse, kafka-secure redis-secure clickhouse-secure, ${EXTRA_SERVICES[*]}, or clickhouse-shards alone)" ;;
    esac
  done
}

cmd_up() {
  parse_names "$@"
  mkdir -p "$SERVICES_DIR"
  local n failed=() plain=()
  for n in "${NAMES[@]}"; do
    if is_extra "$n"; then ext_call "$n" up; else plain+=("$n"); fi
  done
  (( ${#plain[@]} > 0 )) || return 0
  NAMES=("${plain[@]}")
  install_for "${NAMES[@]}"
  # Spawn everything first (Kafka's JVM is the slow one), then wait for each.
  for n in "${NAMES[@]}"; do with_lock "$n" start_one "$n"; done
  for n in "${NAMES[@]}"; do
    wait_ready "$n" || failed+=("$n")
  done
  (( ${#failed[@]} == 0 )) || die "failed to start: ${failed[*]} (logs under $SERVICES_DIR)"
}

cmd_down() {
  parse_names "$@"
  local n
  for n in "${NAMES[@]}"; do
    if is_extra "$n"; then ext_call "$n" down; else with_lock "$n" stop_one "$n"; fi
  done
}

cmd_status() {
  parse_names "$@"
  local n pid rc=0 state ext
  for n in "${NAMES[@]}"; do
    if is_extra "$n"; then ext_call "$n" status || rc=3; continue; fi
    if pid="$(svc_pid "$n")" && healthy "$n"; then
      state="up"
    elif pid="$(svc_pid "$n")"; then
      state="starting"; rc=3
    elif healthy "$n"; then
      state="up (unmanaged)"; pid="-"
    else
      state="down"; pid="-"; rc=3
    fi
    printf '%-11s %-15s %s:%-6s pid=%s\n' "$n" "$state" "$HOST" "$(svc_port "$n")" "$pid"
  done
  return "$rc"
}

cmd_env() {
  printf 'THAW_KAFKA=%s:%s\n' "$HOST" "$KAFKA_PORT"
  printf 'THAW_REDIS_URL=redis://%s:%s\n' "$HOST" "$REDIS_PORT"
  printf 'THAW_CLICKHOUSE_URL=http://%s:%s\n' "$HOST" "$CH_HTTP_PORT"
  secure_env
  local e
  for e in "${EXTRA_SERVICES[@]}"; do ext_call "$e" env; done
}

cmd_logs() {
  (( $# >= 1 )) || die "usage: services.sh logs NAME [LINES]"
  parse_names "$1"
  if is_extra "$1"; then ext_call "$1" logs "${2:-60}"; return; fi
  tail -n "${2:-60}" "$(svc_log "$1")"
}

main() {
  if chshards_named "$@"; then chshards_main "$@"; return; fi
  local cmd="${1:-}"; shift || true
  case "$cmd" in
    up|start) [[ "$cmd" == start && $# -eq 0 ]] && die "usage: services.sh start NAME..."; cmd_up "$@" ;;
    down|stop) [[ "$cmd" == stop && $# -eq 0 ]] && die "usage: services.sh stop NAME..."; cmd_down "$@" ;;
    restart) cmd_down "$@"; cmd_up "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env ;;
    env-secure) secure_env_thaw ;;
    install) parse_names "$@"; for n in "${NAMES[@]}"; do is_extra "$n" && ext_call "$n" install; done
             install_for $(for n in "${NAMES[@]}"; do is_extra "$n" || printf '%s ' "$n"; done) ;;
    logs) cmd_logs "$@" ;;
    -h|--help|help) sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; die "unknown command '${cmd}'" ;;
  esac
}

main "$@"
