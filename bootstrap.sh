#!/usr/bin/env bash
# Set up everything VMClarity needs on a fresh Debian/Ubuntu machine, then run it or test it.
#   ./bootstrap.sh up     install, then run the whole system on the embedded default
#   ./bootstrap.sh test   install, start PostgreSQL and Redis, run the suite on SQLite and PostgreSQL
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VMCLARITY_VENV:-.venv}
PG_URL=${VMCLARITY_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432}
APT_UPDATED=

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {  # install the Debian packages that are missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return
  [ -n "$APT_UPDATED" ] || { as_root apt-get update -qq; APT_UPDATED=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

python_env() {
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "VMClarity needs Python 3.11 or newer as python3" >&2; exit 1
  fi
  python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  static_assets
}

# The web UI's one script, pinned: htmx 2 from the npm registry, checked, served from app/static.
HTMX_VERSION=2.0.8
HTMX_SHA256=22283ef68cb7545914f0a88a1bdedc7256a703d1d580c1d255217d0a50d31313
static_assets() {
  local target=app/static/vendor/htmx.min.js
  command -v curl >/dev/null || apt_install curl
  echo "$HTMX_SHA256  $target" | sha256sum -c --status 2>/dev/null && return
  local scratch; scratch=$(mktemp -d)
  curl -sSfL "https://registry.npmjs.org/htmx.org/-/htmx.org-$HTMX_VERSION.tgz" | tar xz -C "$scratch" package/dist/htmx.min.js
  echo "$HTMX_SHA256  $scratch/package/dist/htmx.min.js" | sha256sum -c --status || { echo "htmx $HTMX_VERSION: checksum mismatch" >&2; exit 1; }
  mkdir -p "$(dirname "$target")" && mv "$scratch/package/dist/htmx.min.js" "$target" && rm -rf "$scratch"
}

start_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    apt_install postgresql postgresql-client
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  if ! psql "$PG_URL/postgres" -tAc 'select 1' >/dev/null 2>&1; then
    # A stock install refuses passwordless TCP logins: give the test superuser a password.
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'vmclarity-test'\""
    PG_URL=postgresql://postgres:vmclarity-test@127.0.0.1:5432
  fi
  export VMCLARITY_TEST_PG_URL=$PG_URL
}

start_redis() {
  if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    apt_install redis-server
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
}

SCANNER_PACKAGES=(util-linux mount e2fsprogs xfsprogs btrfs-progs ntfs-3g clamav clamav-daemon clamdscan chkrootkit lynis)
TEST_PACKAGES=(chromium git curl fdisk dosfstools mtools debootstrap rpm db5.3-util golang-go openssh-client)

run_tests() {
  apt_install "${SCANNER_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  python_env
  start_postgres
  start_redis
  echo "== test suite on SQLite"
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
  echo "== test suite on PostgreSQL"
  VMCLARITY_TEST_DATABASE=postgresql "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
}

case "${1:-}" in
  up) shift; apt_install "${SCANNER_PACKAGES[@]}"; python_env; exec "$VENV/bin/vmclarity" up "$@" ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 up|test [args]" >&2; exit 2 ;;
esac
