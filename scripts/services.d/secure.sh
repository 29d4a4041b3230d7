# shellcheck shell=bash
# Secured instances for scripts/services.sh (sourced by it; not run on its own):
#   kafka-secure       KRaft single node, the same jars as `kafka`; clients connect on a SASL_SSL
#                      listener (SCRAM-SHA-512); the controller listener (PLAINTEXT) is bound to
#                      127.0.0.1 and serves the node itself only
#   redis-secure       redis-server with TLS only (port 0, tls-port) and an ACL user with a password;
#                      the default user is off
#   clickhouse-secure  clickhouse-server whose users all have passwords (users.d/thaw.xml), plain HTTP
#
# None of them is part of the default `up`: start them by name (`services.sh up kafka-secure ...`),
# usually as private instances of a test (THAW_SERVICES_DIR and the ports below on free values).
# They share one CA and one server certificate (SAN DNS:localhost, IP:127.0.0.1), made with openssl
# (and a PKCS12 truststore with keytool) the first time any of them starts, under
# $THAW_SERVICES_DIR/secure-tls/. `services.sh env` prints their addresses, user names, passwords
# and the CA file (THAW_SECURE_*) once they exist; `services.sh env-secure` prints the same as the
# THAW_* variables `thaw` reads, so that `export $(scripts/services.sh env-secure)` points thaw at them.
#
# Environment (defaults in brackets):
#   THAW_SECURE_KAFKA_PORT [29092]  THAW_SECURE_KAFKA_CONTROLLER_PORT [29093]
#   THAW_SECURE_REDIS_PORT [26379]  (TLS)
#   THAW_SECURE_CLICKHOUSE_HTTP_PORT [28123]  THAW_SECURE_CLICKHOUSE_TCP_PORT [29000]
#   THAW_SECURE_USER [thaw]         the user of all three services
#   THAW_SECURE_KAFKA_PASSWORD, THAW_SECURE_REDIS_PASSWORD, THAW_SECURE_CLICKHOUSE_PASSWORD
#       [random, made once and kept in $THAW_SERVICES_DIR/secure-credentials.env, mode 600]
#       characters [A-Za-z0-9._@%+-] only (they go into SCRAM, ACL and XML syntax unquoted).
#       Kafka's SCRAM credentials are written when its storage is formatted (first start of a
#       data directory): a later change of THAW_SECURE_KAFKA_PASSWORD needs a fresh directory.

SECURE_KAFKA_PORT="${THAW_SECURE_KAFKA_PORT:-29092}"
SECURE_KAFKA_CONTROLLER_PORT="${THAW_SECURE_KAFKA_CONTROLLER_PORT:-29093}"
SECURE_REDIS_PORT="${THAW_SECURE_REDIS_PORT:-26379}"
SECURE_CH_HTTP_PORT="${THAW_SECURE_CLICKHOUSE_HTTP_PORT:-28123}"
SECURE_CH_TCP_PORT="${THAW_SECURE_CLICKHOUSE_TCP_PORT:-29000}"
SECURE_USER="${THAW_SECURE_USER:-thaw}"
SECURE_NAMES=(kafka-secure redis-secure clickhouse-secure)

secure_tls_dir() { printf '%s/secure-tls' "$SERVICES_DIR"; }
secure_credentials_file() { printf '%s/secure-credentials.env' "$SERVICES_DIR"; }

# ------------------------------------------------------------ credentials ---

secure_check_secret() { # name value
  [[ "$2" =~ ^[A-Za-z0-9._@%+-]{8,128}$ ]] \
    || die "$1 must be 8-128 characters [A-Za-z0-9._@%+-] (it is written into SCRAM, ACL and XML syntax)"
}

# Loads (or makes once) the passwords: env wins over the file, the file over a fresh random one.
# Sets SECURE_KAFKA_PASSWORD, SECURE_REDIS_PASSWORD, SECURE_CH_PASSWORD, SECURE_ADMIN_PASSWORD,
# SECURE_STORE_PASSWORD (the broker's keystore, and the inter-broker SCRAM user `admin`).
secure_load_credentials() {
  [[ -n "${SECURE_LOADED:-}" ]] && return 0
  local f; f="$(secure_credentials_file)"
  local KAFKA_PASSWORD="" REDIS_PASSWORD="" CLICKHOUSE_PASSWORD="" ADMIN_PASSWORD="" STORE_PASSWORD=""
  if [[ -s "$f" ]]; then
    # shellcheck disable=SC1090
    source "$f"
  fi
  SECURE_KAFKA_PASSWORD="${THAW_SECURE_KAFKA_PASSWORD:-${KAFKA_PASSWORD:-$(openssl rand -hex 16)}}"
  SECURE_REDIS_PASSWORD="${THAW_SECURE_REDIS_PASSWORD:-${REDIS_PASSWORD:-$(openssl rand -hex 16)}}"
  SECURE_CH_PASSWORD="${THAW_SECURE_CLICKHOUSE_PASSWORD:-${CLICKHOUSE_PASSWORD:-$(openssl rand -hex 16)}}"
  SECURE_ADMIN_PASSWORD="${ADMIN_PASSWORD:-$(openssl rand -hex 16)}"
  SECURE_STORE_PASSWORD="${STORE_PASSWORD:-$(openssl rand -hex 16)}"
  secure_check_secret THAW_SECURE_KAFKA_PASSWORD "$SECURE_KAFKA_PASSWORD"
  secure_check_secret THAW_SECURE_REDIS_PASSWORD "$SECURE_REDIS_PASSWORD"
  secure_check_secret THAW_SECURE_CLICKHOUSE_PASSWORD "$SECURE_CH_PASSWORD"
  [[ "$SECURE_USER" =~ ^[A-Za-z][A-Za-z0-9_-]{0,63}$ ]] || die "THAW_SECURE_USER must be [A-Za-z][A-Za-z0-9_-]*"
  mkdir -p "$SERVICES_DIR"
  (
    umask 077
    printf 'KAFKA_PASSWORD=%s\nREDIS_PASSWORD=%s\nCLICKHOUSE_PASSWORD=%s\nADMIN_PASSWORD=%s\nSTORE_PASSWORD=%s\n' \
      "$SECURE_KAFKA_PASSWORD" "$SECURE_REDIS_PASSWORD" "$SECURE_CH_PASSWORD" "$SECURE_ADMIN_PASSWORD" "$SECURE_STORE_PASSWORD" >"$f.tmp"
    mv -f "$f.tmp" "$f"
  )
  SECURE_LOADED=1
}

# ------------------------------------------------------------ certificates ---

# The CA and the server certificate every secured service presents, made once (atomically: in a
# temporary directory, then renamed). ca.crt is what clients trust (THAW_SECURE_CA_FILE).
secure_make_certs() {
  local d; d="$(secure_tls_dir)"
  [[ -s "$d/ca.crt" && -s "$d/server.p12" && -s "$d/truststore.p12" ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl not found (services.sh install kafka-secure)"
  command -v keytool >/dev/null 2>&1 || die "keytool not found (a JRE: services.sh install kafka-secure)"
  local tmp="$d.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "secure: making a CA and a server certificate in $d"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=thaw test CA" \
      -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
      && openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" \
      && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tmp/server.ext" \
      && openssl x509 -req -sha256 -days 3650 -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
        -CAcreateserial -extfile "$tmp/server.ext" -out "$tmp/server.crt" \
      && openssl pkcs12 -export -name server -in "$tmp/server.crt" -inkey "$tmp/server.key" -certfile "$tmp/ca.crt" \
        -out "$tmp/server.p12" -passout "pass:$SECURE_STORE_PASSWORD" \
      && keytool -importcert -noprompt -alias thaw-ca -file "$tmp/ca.crt" -keystore "$tmp/truststore.p12" \
        -storetype PKCS12 -storepass "$SECURE_STORE_PASSWORD"
  } >"$tmp/make.log" 2>&1 || { tail -n 20 "$tmp/make.log" >&2; rm -rf "$tmp"; die "secure: making certificates failed"; }
  chmod 600 "$tmp/ca.key" "$tmp/server.key" "$tmp/server.p12"
  chmod 644 "$tmp/ca.crt" "$tmp/server.crt"
  rm -f "$tmp/server.csr" "$tmp/make.log"
  rm -rf "$d"; mv "$tmp" "$d"
}

# ------------------------------------------------------------ services.sh hooks ---

secure_pkgs() { # name -> appends to the caller's pkgs array what is missing
  command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
  case "$1" in
    kafka-secure)
      command -v java >/dev/null 2>&1 && command -v keytool >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
      if ! kafka_lib_ok; then command -v mvn >/dev/null 2>&1 || pkgs+=(maven); fi ;;
    redis-secure)
      command -v keytool >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
      command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-server redis-tools) ;;
    clickhouse-secure)
      command -v keytool >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
      command -v clickhouse-server >/dev/null 2>&1 || pkgs+=(clickhouse-server clickhouse-client) ;;
  esac
}

secure_cmd_token() {
  case "$1" in kafka-secure) printf 'kafka.Kafka' ;; redis-secure) printf 'redis-server' ;; clickhouse-secure) printf 'clickhouse' ;; esac
}

secure_svc_port() {
  case "$1" in kafka-secure) printf '%s' "$SECURE_KAFKA_PORT" ;; redis-secure) printf '%s' "$SECURE_REDIS_PORT" ;; clickhouse-secure) printf '%s' "$SECURE_CH_HTTP_PORT" ;; esac
}

secure_svc_log() {
  case "$1" in
    kafka-secure) printf '%s/logs/kafka.log' "$(svc_dir kafka-secure)" ;;
    redis-secure) printf '%s/logs/redis.log' "$(svc_dir redis-secure)" ;;
    clickhouse-secure) printf '%s/logs/clickhouse-server.log' "$(svc_dir clickhouse-secure)" ;;
  esac
}

# Has the last start of kafka-secure logged that it serves? (as kafka_ready_in_log, for its log)
secure_kafka_ready_in_log() {
  local logf; logf="$(secure_svc_log kafka-secure)"
  [[ -f "$logf" ]] || return 1
  awk '/services\.sh: starting kafka/ { exit } /Kafka Server started|Transitioning from RECOVERY to RUNNING/ { found = 1; exit } END { exit !found }' \
    < <(tac "$logf")
}

secure_healthy() {
  case "$1" in
    kafka-secure)
      port_open "$SECURE_KAFKA_PORT" && port_open "$SECURE_KAFKA_CONTROLLER_PORT" && secure_kafka_ready_in_log ;;
    redis-secure)
      [[ -s "$(secure_credentials_file)" ]] || return 1 # never started here: make no credentials
      secure_load_credentials
      # The password goes through the environment, never on a command line (ps shows those).
      [[ "$(REDISCLI_AUTH="$SECURE_REDIS_PASSWORD" redis-cli --tls --cacert "$(secure_tls_dir)/ca.crt" \
        -h "$HOST" -p "$SECURE_REDIS_PORT" --user "$SECURE_USER" --no-auth-warning ping 2>/dev/null)" == "PONG" ]] ;;
    clickhouse-secure)
      [[ "$(curl -s -m 2 "http://$HOST:$SECURE_CH_HTTP_PORT/ping" 2>/dev/null)" == Ok* ]] ;;
  esac
}

secure_write_kafka_config() {
  local d t; d="$(svc_dir kafka-secure)"; t="$(secure_tls_dir)"
  mkdir -p "$d/data" "$d/logs"
  (
    umask 077 # it holds the keystore and inter-broker passwords
    cat >"$d/server.properties" <<EOF
# Generated by scripts/services.d/secure.sh -- edits are overwritten on start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$SECURE_KAFKA_CONTROLLER_PORT
listeners=SASL_SSL://$HOST:$SECURE_KAFKA_PORT,CONTROLLER://$HOST:$SECURE_KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://$HOST:$SECURE_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$SECURE_ADMIN_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$t/server.p12
ssl.keystore.password=$SECURE_STORE_PASSWORD
ssl.key.password=$SECURE_STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$t/truststore.p12
ssl.truststore.password=$SECURE_STORE_PASSWORD
ssl.client.auth=none
log.dirs=$d/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
EOF
  )
  cat >"$d/log4j2.properties" <<'EOF'
# Generated by scripts/services.d/secure.sh
status = warn
name = thaw-kafka-secure
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
EOF
}

# SCRAM credentials are stored in the cluster metadata, written here at format time (KRaft).
secure_kafka_format_if_needed() {
  local d; d="$(svc_dir kafka-secure)"
  [[ -f "$d/data/meta.properties" ]] && return 0
  local cid; cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  log "kafka-secure: formatting KRaft storage with SCRAM-SHA-512 users admin and $SECURE_USER"
  if ! java -Dlog4j2.configurationFile="$d/log4j2.properties" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool \
      format -t "$cid" -c "$d/server.properties" --ignore-formatted \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$SECURE_ADMIN_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$SECURE_USER,password=$SECURE_KAFKA_PASSWORD]" \
      >>"$d/logs/format.log" 2>&1 {LOCK_FD}>&-; then
    tail -n 30 "$d/logs/format.log" >&2
    die "kafka-secure: kafka-storage format failed"
  fi
}

secure_write_redis_config() {
  local d t; d="$(svc_dir redis-secure)"; t="$(secure_tls_dir)"
  mkdir -p "$d/data" "$d/logs"
  (
    umask 077 # it holds the ACL password
    cat >"$d/redis.conf" <<EOF
# Generated by scripts/services.d/secure.sh -- edits are overwritten on start.
bind $HOST
port 0
tls-port $SECURE_REDIS_PORT
tls-cert-file $t/server.crt
tls-key-file $t/server.key
tls-ca-cert-file $t/ca.crt
tls-auth-clients no
protected-mode yes
daemonize no
pidfile $d/redis.pid
logfile $d/logs/redis.log
loglevel notice
dir $d/data
save ""
appendonly no
user default off
user $SECURE_USER on >$SECURE_REDIS_PASSWORD ~* &* +@all
EOF
  )
}

secure_write_clickhouse_config() {
  local d; d="$(svc_dir clickhouse-secure)"
  # The plain server's config.xml, on this instance's ports and directory (dynamic scope).
  local CH_HTTP_PORT="$SECURE_CH_HTTP_PORT" CH_TCP_PORT="$SECURE_CH_TCP_PORT"
  write_clickhouse_config clickhouse-secure
  local hash_default hash_user
  hash_default="$(printf '%s' "$SECURE_ADMIN_PASSWORD" | sha256sum | cut -d' ' -f1)"
  hash_user="$(printf '%s' "$SECURE_CH_PASSWORD" | sha256sum | cut -d' ' -f1)"
  # `default` keeps the profile and quota of users.xml but gets a password nobody is told.
  sed -i "s|<password></password>|<password_sha256_hex>$hash_default</password_sha256_hex>|" "$d/users.xml"
  mkdir -p "$d/users.d"
  cat >"$d/users.d/thaw.xml" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/services.d/secure.sh -->
<yandex>
    <users>
        <$SECURE_USER>
            <password_sha256_hex>$hash_user</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </$SECURE_USER>
    </users>
</yandex>
EOF
}

secure_spawn() { # name
  local name="$1" d; d="$(svc_dir "$name")"
  local logf; logf="$(secure_svc_log "$name")"
  mkdir -p "$d/logs"
  secure_load_credentials
  secure_make_certs
  case "$name" in
    kafka-secure)
      secure_write_kafka_config
      secure_kafka_format_if_needed
      rotate_if_big "$logf"
      printf '==== %s services.sh: starting kafka-secure on %s:%s ====\n' "$(date -Is)" "$HOST" "$SECURE_KAFKA_PORT" >>"$logf"
      # shellcheck disable=SC2086
      nohup setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$d/log4j2.properties" -Dkafka.logs.dir="$d/logs" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$d/server.properties" </dev/null >>"$logf" 2>&1 {LOCK_FD}>&- &
      echo $! >"$(pid_file kafka-secure)"
      ;;
    redis-secure)
      secure_write_redis_config
      rm -f "$(pid_file redis-secure)"
      nohup setsid redis-server "$d/redis.conf" </dev/null >>"$d/logs/stdout.log" 2>&1 {LOCK_FD}>&- &
      echo $! >"$(pid_file redis-secure)"
      ;;
    clickhouse-secure)
      secure_write_clickhouse_config
      rm -f "$(pid_file clickhouse-secure)"
      (cd "$d" && exec nohup setsid clickhouse-server --config-file="$d/config.xml" \
        </dev/null >>"$d/logs/stdout.log" 2>&1) {LOCK_FD}>&- &
      echo $! >"$(pid_file clickhouse-secure)"
      ;;
  esac
}

# ------------------------------------------------------------ env ---

# THAW_SECURE_* lines, once the credentials exist (a secured service was started here).
secure_env() {
  [[ -s "$(secure_credentials_file)" ]] || return 0
  secure_load_credentials
  printf 'THAW_SECURE_CA_FILE=%s\n' "$(secure_tls_dir)/ca.crt"
  printf 'THAW_SECURE_USER=%s\n' "$SECURE_USER"
  printf 'THAW_SECURE_KAFKA=%s:%s\n' "$HOST" "$SECURE_KAFKA_PORT"
  printf 'THAW_SECURE_KAFKA_PASSWORD=%s\n' "$SECURE_KAFKA_PASSWORD"
  printf 'THAW_SECURE_REDIS_URL=rediss://%s@%s:%s\n' "$SECURE_USER" "$HOST" "$SECURE_REDIS_PORT"
  printf 'THAW_SECURE_REDIS_PASSWORD=%s\n' "$SECURE_REDIS_PASSWORD"
  printf 'THAW_SECURE_CLICKHOUSE_URL=http://%s:%s\n' "$HOST" "$SECURE_CH_HTTP_PORT"
  printf 'THAW_SECURE_CLICKHOUSE_PASSWORD=%s\n' "$SECURE_CH_PASSWORD"
}

# The same, as the variables `thaw` reads: export $(scripts/services.sh env-secure)
secure_env_thaw() {
  [[ -s "$(secure_credentials_file)" ]] || die "no secured services here yet: services.sh up kafka-secure redis-secure clickhouse-secure"
  secure_load_credentials
  local ca; ca="$(secure_tls_dir)/ca.crt"
  printf 'THAW_KAFKA=%s:%s\n' "$HOST" "$SECURE_KAFKA_PORT"
  printf 'THAW_KAFKA_TLS_CA_FILE=%s\n' "$ca"
  printf 'THAW_KAFKA_SASL_MECHANISM=scram-sha-512\n'
  printf 'THAW_KAFKA_SASL_USERNAME=%s\n' "$SECURE_USER"
  printf 'THAW_KAFKA_SASL_PASSWORD=%s\n' "$SECURE_KAFKA_PASSWORD"
  printf 'THAW_REDIS_URL=rediss://%s@%s:%s\n' "$SECURE_USER" "$HOST" "$SECURE_REDIS_PORT"
  printf 'THAW_REDIS_TLS_CA_FILE=%s\n' "$ca"
  printf 'THAW_REDIS_PASSWORD=%s\n' "$SECURE_REDIS_PASSWORD"
  printf 'THAW_CLICKHOUSE_URL=http://%s:%s\n' "$HOST" "$SECURE_CH_HTTP_PORT"
  printf 'THAW_CLICKHOUSE_USER=%s\n' "$SECURE_USER"
  printf 'THAW_CLICKHOUSE_PASSWORD=%s\n' "$SECURE_CH_PASSWORD"
}
