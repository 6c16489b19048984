# Shared by the scripts: paths and small helpers. Sourced, not run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SUBREG_CACHE:-$HOME/.cache/subreg}
# The embedded database the tests, the benchmarks and `make run` start (production
# runs on MongoDB): mongo-java-server with its H2 store, durable per write
# (tools/mongo-java-server; chosen by measurement, docs/performance.md), or FerretDB
# (SUBREG_EMBEDDED_DB=ferretdb), which the suite also runs its concurrency and fault
# tests on, as a second implementation of the wire protocol.
EMBEDDED_DB=${SUBREG_EMBEDDED_DB:-mongo-java-server}
MJS_VERSION=1.47.0 # must match <mjs.version> in tools/mongo-java-server/pom.xml
MJS_JAR=$CACHE/mongo-java-server-$MJS_VERSION/embedded-mongo.jar
MJS_JAVA_OPTS=${SUBREG_MJS_JAVA_OPTS:--Xmx256m -XX:+UseSerialGC}
FERRETDB_VERSION=1.24.2
FERRETDB_BIN=$CACHE/ferretdb-$FERRETDB_VERSION/ferretdb
TOXIPROXY_VERSION=2.12.0 # must match tools/toxiproxy/go.mod
TOXIPROXY_BIN=$CACHE/toxiproxy-$TOXIPROXY_VERSION/toxiproxy-server
HELM_VERSION=4.3.2
HELM_BIN=$CACHE/helm-$HELM_VERSION/helm
HYDRA_VERSION=2.3.0 # must match tools/hydra/go.mod
HYDRA_BIN=$CACHE/hydra-$HYDRA_VERSION/hydra
VENV=$CACHE/venv
REDOCLY_VERSION=2.77.0
DCLINT_VERSION=3.1.0
DCLINT_BIN=$CACHE/npm/dclint-$DCLINT_VERSION/node_modules/.bin/dclint
AXE_VERSION=4.14.1
AXE_JS=$CACHE/npm/axe-core-$AXE_VERSION/node_modules/axe-core/axe.min.js

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# npm_tool PACKAGE VERSION: installs an npm package at exactly that version into
# $CACHE/npm/NAME-VERSION (once; concurrent first runs serialised) and prints the
# path of its node_modules/.bin.
npm_tool() {
  local pkg=$1 version=$2 prefix
  prefix=$CACHE/npm/$(basename "$pkg")-$version
  if [ ! -f "$prefix/.installed" ]; then
    command -v npm >/dev/null || die "npm (Node.js 20) is needed for $pkg"
    mkdir -p "$prefix"
    (
      flock 9
      if [ ! -f "$prefix/.installed" ]; then
        say "installing $pkg@$version into $prefix"
        npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error --save-exact \
          "$pkg@$version" >&2 && touch "$prefix/.installed"
      fi
    ) 9>"$prefix/.lock" || die "npm could not install $pkg@$version"
  fi
  echo "$prefix/node_modules/.bin"
}

# A free TCP port on loopback (see tests/api/ports.py: below the ephemeral range).
free_port() { python3 "$ROOT/tests/api/ports.py"; }

# The median of the numbers on stdin, one per line (the benchmarks' rounds).
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

# Waits until host:port accepts TCP connections (or the pid dies).
wait_port() {
  local port=$1 pid=$2 tries=${3:-100}
  for _ in $(seq "$tries"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# Stops a process by PID: TERM, then KILL after a grace period.
stop_pid() {
  local pid=$1 grace=${2:-20}
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((grace * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
