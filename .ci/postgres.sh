#!/usr/bin/env bash
# A throwaway PostgreSQL + pgvector for the tests, next to (never touching) the machine's own cluster.
#
#   .ci/postgres.sh              install pgvector if needed, then start, check and stop a throwaway cluster
#   .ci/postgres.sh start DIR    install pgvector if needed, start a cluster in DIR (empty or missing),
#                                print its URL (postgres://postgres@127.0.0.1:PORT/postgres) on stdout
#   .ci/postgres.sh stop DIR     stop that cluster and remove DIR
#   .ci/postgres.sh restart DIR [SECONDS]
#                                stop that cluster (fast: connections are cut), wait SECONDS (default 0),
#                                start it again on the same port: what the fleet tests do to a running
#                                index (.ci/run exports the cluster's DIR as FLOWER_TEST_PG_DIR)
#
# pgvector: the distribution's postgresql-NN-pgvector where a release packages it; on one that does not
# (Debian bookworm) Debian's own pgvector source package from the next release, built against the
# machine's server headers. Both are skipped once the extension's control file is installed.
# The cluster: initdb + pg_ctl as the postgres user, on a free port of 127.0.0.1, socket in DIR, no
# fsync (test data only). `postgres` is trusted on 127.0.0.1; other roles need a password (so a
# test can see a refused one). Logs go to stderr, so `url=$(.ci/postgres.sh start DIR)` works.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The newest server installed (Debian's layout: /usr/lib/postgresql/NN/bin).
pg_major() {
  local major
  major=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null | sed -E 's#^/usr/lib/postgresql/([0-9]+)/.*#\1#' | sort -n | tail -1)
  [ -n "$major" ] || return 1
  echo "$major"
}

apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }

# Package $1 has an install candidate in the current apt lists.
apt_has() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
  [ -n "$candidate" ] && [ "$candidate" != '(none)' ]
}

# The release after this machine's, by Debian codename.
next_release() {
  local releases=(buster bullseye bookworm trixie forky duke) i
  for ((i = 0; i < ${#releases[@]} - 1; i++)); do
    if [ "${releases[$i]}" = "$1" ]; then echo "${releases[$((i + 1))]}"; return; fi
  done
  return 1
}

# A deb-src entry for release $1, built from the machine's own main Debian entry (same mirror and key).
add_deb_src() {
  local newer=$1 codename=$2 out=/etc/apt/sources.list.d/flower-ci-pgvector-src.sources
  local sources uri key
  sources=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v flower-ci- | head -1 || true)
  if [ -n "$sources" ]; then
    # deb822: the stanza whose Suites holds the bare codename (not -security or -updates).
    read -r uri key < <(awk -v codename="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      { uri = ""; key = ""; hit = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, " "); uri = u[1] }
          if ($i ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", $i); key = $i }
          if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == codename) hit = 1 }
        }
        if (hit && uri != "") { print uri, (key == "" ? "-" : key); exit }
      }' "$sources")
  elif [ -f /etc/apt/sources.list ]; then
    uri=$(awk -v codename="$codename" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == codename) { for (j = 2; j < i; j++) if ($j !~ /^\[/ && $j !~ /\]$/) { print $j; exit } } }' /etc/apt/sources.list)
    key=-
  fi
  [ -n "${uri:-}" ] || die "no Debian '$codename' entry in the apt sources to derive a deb-src entry from"
  log "adding deb-src $uri $newer main ($out)"
  {
    echo 'Types: deb-src'
    echo "URIs: $uri"
    echo "Suites: $newer"
    echo 'Components: main'
    [ "$key" = - ] || echo "Signed-By: $key"
  } >"$out"
}

install_pgvector() {
  local major=$1 pg_config=/usr/lib/postgresql/$1/bin/pg_config
  local control
  control="$($pg_config --sharedir 2>/dev/null || echo /usr/share/postgresql/"$major")/extension/vector.control"
  [ -f "$control" ] && return 0
  # One installer at a time (two test runs starting together).
  exec 9>/tmp/flower-ci-pgvector.lock
  flock 9
  [ -f "$control" ] && return 0
  log "pgvector is not installed for PostgreSQL $major: installing"
  apt-get update -qq
  if apt_has "postgresql-$major-pgvector"; then
    apt_install "postgresql-$major-pgvector"
  else
    local codename newer build
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    newer=$(next_release "$codename") || die "do not know the Debian release after '$codename' to take pgvector's source from"
    add_deb_src "$newer" "$codename"
    apt-get update -qq
    apt_install "postgresql-server-dev-$major" build-essential dpkg-dev
    build=$(mktemp -d /tmp/flower-ci-pgvector.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$build'" RETURN
    (cd "$build" && apt-get source -qq pgvector >/dev/null 2>&1) || die "apt-get source pgvector (from $newer) failed"
    local src
    src=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -1)
    [ -n "$src" ] || die "apt-get source pgvector left no pgvector-* folder in $build"
    # OPTFLAGS= as Debian's own build: no -march=native, so the library runs on any x86-64 this disk lands on.
    make -s -C "$src" PG_CONFIG="$pg_config" OPTFLAGS= -j"$(nproc)" >/dev/null
    make -s -C "$src" PG_CONFIG="$pg_config" OPTFLAGS= install >/dev/null
  fi
  [ -f "$control" ] || die "pgvector install finished but $control is missing"
  log "pgvector installed: $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$control")"
}

ensure_server() {
  local major
  if ! major=$(pg_major); then
    log "no PostgreSQL server installed: installing Debian's postgresql"
    apt-get update -qq
    apt_install postgresql
    major=$(pg_major) || die "installed postgresql but found no /usr/lib/postgresql/NN/bin/postgres"
  fi
  echo "$major"
}

# Run as the postgres user (initdb and postgres refuse root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

start_cluster() {
  local dir=$1 major bin
  major=$(ensure_server)
  install_pgvector "$major"
  bin=/usr/lib/postgresql/$major/bin
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty: give start a new folder"
  [ "$(id -u)" != 0 ] || chown postgres: "$dir"
  chmod 700 "$dir"
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  cat >"$dir/data/pg_hba.conf" <<'EOF'
local all all                  trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
EOF
  local port tries
  for tries in 1 2 3; do
    port=$(free_port)
    # -w waits until it accepts connections; a port taken meanwhile fails the start, so try another.
    if start_server "$bin" "$dir" "$port"; then
      echo "$port" >"$dir/port"
      echo "postgres://postgres@127.0.0.1:$port/postgres"
      return
    fi
    log "start on port $port failed (try $tries): $(tail -3 "$dir/server.log" 2>/dev/null | tr '\n' ' ')"
  done
  die "could not start PostgreSQL in $dir (see $dir/server.log)"
}

start_server() {
  local bin=$1 dir=$2 port=$3
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -s \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >&2
}

restart_cluster() {
  local dir=$1 down=${2:-0} bin
  [ -f "$dir/port" ] || die "$dir holds no cluster started by this script"
  bin=/usr/lib/postgresql/$(pg_major)/bin
  as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -s stop >&2
  sleep "$down"
  start_server "$bin" "$dir" "$(cat "$dir/port")" || die "could not start PostgreSQL in $dir again (see $dir/server.log)"
}

stop_cluster() {
  local dir=$1 major
  [ -d "$dir/data" ] || { rm -rf "$dir"; return 0; }
  major=$(pg_major)
  as_postgres "/usr/lib/postgresql/$major/bin/pg_ctl" -D "$dir/data" -m immediate -s stop >&2 || true
  rm -rf "$dir"
}

case "${1:-check}" in
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start_cluster "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop_cluster "$2" ;;
  restart) [ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 restart DIR [SECONDS]"; restart_cluster "$2" "${3:-0}" ;;
  check)
    began=$(date +%s.%N)
    dir=$(mktemp -d /tmp/flower-ci-pg.XXXXXX)
    trap 'stop_cluster "$dir"' EXIT
    url=$(start_cluster "$dir")
    port=${url##*:}; port=${port%%/*}
    version=$(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -tA \
      -c 'CREATE EXTENSION vector' -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    log "ok: $url, pgvector $version, $(awk -v b="$began" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - b }')"
    ;;
  *) die "usage: $0 [check | start DIR | stop DIR | restart DIR [SECONDS]]" ;;
esac
