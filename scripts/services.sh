#!/usr/bin/env bash
# Make sure the services the tests talk to are up: Redis on 127.0.0.1:6379, PostgreSQL on
# 127.0.0.1:5432 (trust auth, databases postgres and test), Debian's chromium for the web chat browser
# test and Debian's prometheus for the metrics test. Installs from the OS packages what is missing, starts
# what is stopped. Safe to run again.
set -uo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq >/dev/null; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! command -v pg_ctlcluster >/dev/null; then
  apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # the tests connect as postgres over TCP without a password, as on the project's machines
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "/etc/postgresql/$version/main/pg_hba.conf"
  sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "/etc/postgresql/$version/main/pg_hba.conf"
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi

# Prometheus for tests/test_observability.py, which starts its own server on a free port: the package's
# system service is not needed (Debian's postinst may start it under systemd; nothing here relies on it)
command -v prometheus >/dev/null || apt_install prometheus || echo "services: prometheus could not be installed; its test will say so" >&2

if ! command -v chromium >/dev/null; then
  apt_install chromium || echo "services: chromium could not be installed; the browser test will say so" >&2
fi

for _ in $(seq 1 30); do
  if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
      || createdb -h 127.0.0.1 -U postgres test
    exit 0
  fi
  sleep 1
done
echo "services: Redis or PostgreSQL did not come up; their tests will fail" >&2
