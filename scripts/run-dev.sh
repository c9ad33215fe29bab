#!/usr/bin/env bash
# Start Airlock on embedded defaults: migrate, load the example catalog, seed the
# demo users, then run the web server, a Celery worker and Celery beat together.
# Unless VAULT_ADDR is set, a throwaway OpenBao dev server (the sandbox) runs
# too, so the example Vault profiles work. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
ADDR=${AIRLOCK_ADDR:-127.0.0.1:8000}
export AIRLOCK_VAR_DIR=${AIRLOCK_VAR_DIR:-$PWD/var}
# Approvers are emailed; here the mail is printed by the worker, not sent.
export EMAIL_URL=${EMAIL_URL:-consolemail://}
# runserver speaks plain HTTP: no redirect to HTTPS, even with DJANGO_DEBUG=0.
export AIRLOCK_HTTPS=${AIRLOCK_HTTPS:-off}
mkdir -p "$AIRLOCK_VAR_DIR/celery-broker" "$AIRLOCK_VAR_DIR/celery-processed" "$AIRLOCK_VAR_DIR/celery-control"

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

sandbox=""
if [ -z "${VAULT_ADDR:-}" ] && [ -z "${AWS_ENDPOINT_URL:-}" ] && [ -x "$BIN/bao" ] && [ -x "$BIN/moto_server" ]; then
    # The sandbox: throwaway OpenBao and AWS (moto) servers, in memory, on loopback.
    export AIRLOCK_SANDBOX=1
    export VAULT_ADDR="http://127.0.0.1:${AIRLOCK_SANDBOX_VAULT_PORT:-8200}"
    export VAULT_TOKEN_FILE="$AIRLOCK_VAR_DIR/sandbox-vault-token"
    (umask 077; "$BIN/python" -c "import secrets; print(secrets.token_urlsafe(24))" > "$VAULT_TOKEN_FILE")
    "$BIN/bao" server -dev -dev-root-token-id="$(cat "$VAULT_TOKEN_FILE")" \
        -dev-listen-address="${VAULT_ADDR#http://}" > "$AIRLOCK_VAR_DIR/sandbox-vault.log" 2>&1 &
    export AWS_ENDPOINT_URL="http://127.0.0.1:${AIRLOCK_SANDBOX_AWS_PORT:-8299}"
    export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_REGION=us-east-1
    # The audit chain's anchors and archive go to a bucket on the same moto server.
    export AIRLOCK_WITNESS_BUCKET=${AIRLOCK_WITNESS_BUCKET:-airlock-sandbox-witness}
    export AIRLOCK_ANCHOR_SECONDS=${AIRLOCK_ANCHOR_SECONDS:-60}
    "$BIN/moto_server" -H 127.0.0.1 -p "${AWS_ENDPOINT_URL##*:}" > "$AIRLOCK_VAR_DIR/sandbox-aws.log" 2>&1 &
    sandbox="  Sandbox OpenBao at $VAULT_ADDR and AWS (moto) at $AWS_ENDPOINT_URL: in memory, gone at Ctrl-C."
fi

"$BIN/python" manage.py migrate --noinput -v0
"$BIN/python" manage.py seed_demo
"$BIN/python" manage.py sync_catalog
if [ -n "$sandbox" ]; then
    "$BIN/python" manage.py sandbox
fi

"$BIN/celery" -A airlock worker --loglevel=INFO --concurrency=2 &
"$BIN/celery" -A airlock beat --loglevel=INFO --schedule="$AIRLOCK_VAR_DIR/celerybeat-schedule" &
"$BIN/python" manage.py runserver --noreload "$ADDR" &

# The banner comes last, after the services' own start-up output, so it does not
# scroll away: wait until the web server answers and the worker replies to a ping.
answers() {
    "$BIN/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "http://$ADDR/healthz" 2>/dev/null
}
for _ in $(seq 60); do
    answers && "$BIN/celery" -A airlock inspect ping --timeout 1 >/dev/null 2>&1 && break
    sleep 1
done
sleep 1  # let the last start-up lines reach the terminal

cat <<MSG

  Airlock is running: http://$ADDR/   (admin: http://$ADDR/admin/)
  Sign in as alice (requester), bob or carol (approvers), dave (auditor) or admin;
  the passwords are in $AIRLOCK_VAR_DIR/demo-logins.txt.
$sandbox
  Press Ctrl-C to stop everything.

MSG
wait -n
