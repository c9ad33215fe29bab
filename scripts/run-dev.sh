#!/usr/bin/env bash
# Start Airlock on embedded defaults: migrate, load the example catalog, seed the
# demo users, then run the web server, a Celery worker and Celery beat together.
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
ADDR=${AIRLOCK_ADDR:-127.0.0.1:8000}
export AIRLOCK_VAR_DIR=${AIRLOCK_VAR_DIR:-$PWD/var}
mkdir -p "$AIRLOCK_VAR_DIR/celery-broker" "$AIRLOCK_VAR_DIR/celery-processed"

"$BIN/python" manage.py migrate --noinput -v0
"$BIN/python" manage.py seed_demo
"$BIN/python" manage.py sync_catalog

stop() {
    trap - INT TERM EXIT
    kill $(jobs -pr) 2>/dev/null || true
    # Give Celery its warm shutdown, then make sure nothing is left behind.
    for _ in $(seq 50); do
        [ -z "$(jobs -pr)" ] && return
        sleep 0.2
    done
    kill -9 $(jobs -pr) 2>/dev/null || true
}
trap stop INT TERM EXIT
"$BIN/celery" -A broker worker --loglevel=INFO --concurrency=2 &
"$BIN/celery" -A broker beat --loglevel=INFO --schedule="$AIRLOCK_VAR_DIR/celerybeat-schedule" &
"$BIN/python" manage.py runserver --noreload "$ADDR" &

cat <<MSG

  Airlock is running: http://$ADDR/   (admin: http://$ADDR/admin/)
  Sign in as alice (requester), bob or carol (approvers), dave (auditor) or admin;
  the passwords are in $AIRLOCK_VAR_DIR/demo-logins.txt.
  Press Ctrl-C to stop the web server, the worker and beat.

MSG
wait -n
