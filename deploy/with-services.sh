#!/usr/bin/env bash
# Run a command with Kafka and PostgreSQL up: start what is not running, run the
# command, stop what this script started, keep the exit code. (Tests migrate their
# own databases; see tests/conftest.py.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

started=()
cleanup() {
  for service in "${started[@]}"; do
    "$here/$service/$service.sh" stop || true
  done
}
trap cleanup EXIT

for service in kafka postgres; do
  if "$here/$service/$service.sh" status >/dev/null 2>&1; then
    echo "with-services: $service already running; leaving it running"
  else
    "$here/$service/$service.sh" start
    started+=("$service")
  fi
done

export NUDGE_TEST_KAFKA="${NUDGE_TEST_KAFKA:-127.0.0.1:9092}"
export NUDGE_TEST_DATABASE_URL="${NUDGE_TEST_DATABASE_URL:-postgresql+asyncpg://nudge:nudge@127.0.0.1:5432/nudge_test}"

set +e
"$@"
status=$?
set -e
exit $status
