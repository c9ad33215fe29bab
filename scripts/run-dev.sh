#!/usr/bin/env bash
# Start Airlock on embedded defaults: migrate, load the example catalog, seed the
# demo users, then run the web server, a Celery worker and Celery beat together.
# Unless VAULT_ADDR or AWS_ENDPOINT_URL is set, throwaway sources run too (the
# sandbox), so the example profiles work: OpenBao, moto (AWS) with IAM enforced,
# PostgreSQL (unless AIRLOCK_PG_DSN_PAYMENTS is set) and sshd, when the machine has
# them. Ctrl-C stops all of it.
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

postgres_pid=""
sandbox_ssh_user=""  # a throwaway account the sandbox sshd made, removed at the end
stop() {
    trap - INT TERM EXIT
    # PostgreSQL's fast shutdown: its default (SIGTERM) waits for every session to end.
    [ -n "$postgres_pid" ] && kill -INT "$postgres_pid" 2>/dev/null
    kill $(jobs -pr) 2>/dev/null || true
    # Give Celery its warm shutdown, then make sure nothing is left behind.
    for _ in $(seq 50); do
        [ -z "$(jobs -pr)" ] && break
        sleep 0.2
    done
    kill -9 $(jobs -pr) 2>/dev/null || true
    # The account the sandbox sshd made for its logins goes with it.
    [ -n "$sandbox_ssh_user" ] && userdel --remove "$sandbox_ssh_user" 2>/dev/null
    return 0
}
trap stop INT TERM EXIT

# A fresh cluster in var/ for the payments-db-* profiles (postgres.role), from the
# machine's PostgreSQL server binaries (Debian: postgresql); none: those profiles
# show as unavailable.
start_sandbox_postgres() {
    local bin dir="$AIRLOCK_VAR_DIR/sandbox-postgres" as_postgres=()
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$bin/initdb" ] || bin=$(dirname "$(command -v initdb 2>/dev/null || echo /none/initdb)")
    if [ ! -x "$bin/initdb" ]; then
        sandbox_postgres="  No PostgreSQL server binaries (initdb): the payments-db-* profiles are unavailable."
        return
    fi
    postgres_port=${AIRLOCK_SANDBOX_PG_PORT:-$("$BIN/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
    rm -rf "$dir"
    mkdir -m 700 "$dir"
    (umask 077; "$BIN/python" -c "import secrets; print(secrets.token_urlsafe(24))" > "$dir/superuser-password")
    if [ "$(id -u)" = 0 ]; then
        # initdb and postgres refuse to run as root.
        if ! id -u postgres > /dev/null 2>&1; then
            sandbox_postgres="  No postgres user to run PostgreSQL as (not as root): the payments-db-* profiles are unavailable."
            return
        fi
        chown -R postgres: "$dir"
        as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups)
    fi
    if ! "${as_postgres[@]}" "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/superuser-password" \
            --auth=scram-sha-256 -E UTF8 > "$dir/initdb.log" 2>&1; then
        sandbox_postgres="  PostgreSQL's initdb failed (see $dir/initdb.log): the payments-db-* profiles are unavailable."
        return
    fi
    "${as_postgres[@]}" "$bin/postgres" -D "$dir/data" -p "$postgres_port" -k "$dir" \
        -c listen_addresses=127.0.0.1 > "$AIRLOCK_VAR_DIR/sandbox-postgres.log" 2>&1 &
    postgres_pid=$!
    sandbox_postgres="  Sandbox PostgreSQL at 127.0.0.1:$postgres_port (the payments-db-* profiles): gone at Ctrl-C."
}

# A throwaway sshd on loopback (Debian: openssh-server) for the payments-hosts-ssh
# profile: it trusts the sandbox OpenBao's SSH CA and the revoked-keys list (KRL)
# that `manage.py ssh_revoked_serials` gives, refreshed every few seconds.
start_sandbox_sshd() {
    local sshd dir="$AIRLOCK_VAR_DIR/sandbox-ssh" port=${AIRLOCK_SANDBOX_SSH_PORT:-2222}
    local ca="$AIRLOCK_VAR_DIR/sandbox-ssh-ca.pub" login=ubuntu  # the example profile's principal
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    if [ ! -x "$sshd" ]; then
        sandbox_ssh="  No sshd (Debian: openssh-server): SSH certificates are issued, but there is no host to log in to."
        return
    fi
    rm -rf "$dir"
    mkdir -m 700 "$dir"
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_ed25519"
    ssh-keygen -q -k -f "$dir/revoked.krl"
    cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $dir/host_ed25519
PidFile none
TrustedUserCAKeys $ca
RevokedKeys $dir/revoked.krl
AuthorizedKeysFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
CONF
    if [ "$(id -u)" = 0 ]; then
        # Never a real account: a machine's own 'ubuntu' may hold sudo, and the
        # sandbox CA signs for anyone the demo users approve.
        if id -u "$login" > /dev/null 2>&1; then
            sandbox_ssh="  No sandbox sshd: this machine has a real '$login' account, which the sandbox CA must not open."
            return
        fi
        mkdir -p /run/sshd  # its privilege separation directory
        # A throwaway local user named as the principal ('*': no password, yet not
        # locked), removed at Ctrl-C; the only one this sshd lets in.
        useradd --create-home --password '*' "$login"
        sandbox_ssh_user=$login
        echo "AllowUsers $login" >> "$dir/sshd_config"
    else
        # sshd not run as root lets in only its own user: the principal maps to you.
        login=$(id -un)
        echo ubuntu > "$dir/principals"
        echo "AuthorizedPrincipalsFile $dir/principals" >> "$dir/sshd_config"
    fi
    "$sshd" -D -e -f "$dir/sshd_config" > "$AIRLOCK_VAR_DIR/sandbox-sshd.log" 2>&1 &
    sleep 0.5
    if ! kill -0 $! 2> /dev/null; then
        sandbox_ssh="  The sandbox sshd did not start ($(tail -n 1 "$AIRLOCK_VAR_DIR/sandbox-sshd.log")): no host to log in to."
        return
    fi
    while sleep 10; do
        "$BIN/python" manage.py ssh_revoked_serials > "$dir/revoked.spec" 2> /dev/null \
            && ssh-keygen -q -k -f "$dir/revoked.krl.new" -s "$ca" "$dir/revoked.spec" 2> /dev/null \
            && mv -f "$dir/revoked.krl.new" "$dir/revoked.krl"
    done &
    sandbox_ssh="  Sandbox sshd at 127.0.0.1:$port: log in as $login with a payments-hosts-ssh certificate."
}

sandbox=""
sandbox_ssh=""
sandbox_postgres=""
sandbox_mysql=""
postgres_port=""
if [ -z "${VAULT_ADDR:-}" ] && [ -z "${AWS_ENDPOINT_URL:-}" ] && [ -x "$BIN/bao" ] && [ -x "$BIN/moto_server" ]; then
    # The sandbox: throwaway OpenBao and AWS (moto) servers, in memory, on loopback.
    export AIRLOCK_SANDBOX=1
    export VAULT_ADDR="http://127.0.0.1:${AIRLOCK_SANDBOX_VAULT_PORT:-8200}"
    export VAULT_TOKEN_FILE="$AIRLOCK_VAR_DIR/sandbox-vault-token"
    (umask 077; "$BIN/python" -c "import secrets; print(secrets.token_urlsafe(24))" > "$VAULT_TOKEN_FILE")
    "$BIN/bao" server -dev -dev-root-token-id="$(cat "$VAULT_TOKEN_FILE")" \
        -dev-listen-address="${VAULT_ADDR#http://}" > "$AIRLOCK_VAR_DIR/sandbox-vault.log" 2>&1 &
    export AWS_ENDPOINT_URL="http://127.0.0.1:${AIRLOCK_SANDBOX_AWS_PORT:-8299}"
    export AWS_REGION=us-east-1
    # Never your own AWS credentials: Airlock gets the sandbox's below.
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
    # The audit chain's anchors and archive go to a bucket on the same moto server.
    export AIRLOCK_WITNESS_BUCKET=${AIRLOCK_WITNESS_BUCKET:-airlock-sandbox-witness}
    export AIRLOCK_ANCHOR_SECONDS=${AIRLOCK_ANCHOR_SECONDS:-60}
    "$BIN/moto_server" -H 127.0.0.1 -p "${AWS_ENDPOINT_URL##*:}" > "$AIRLOCK_VAR_DIR/sandbox-aws.log" 2>&1 &
    sandbox="  Sandbox OpenBao at $VAULT_ADDR and AWS (moto, IAM enforced) at $AWS_ENDPOINT_URL: in memory, gone at Ctrl-C."
    if [ -z "${AIRLOCK_PG_DSN_PAYMENTS:-}${AIRLOCK_PG_DSN_PAYMENTS_FILE:-}" ]; then
        start_sandbox_postgres
    fi
    # A MariaDB/MySQL answering locally as root without a password (a development
    # machine's) gets the core database and a least-privileged admin for core-db-readonly.
    if [ -z "${AIRLOCK_MYSQL_DSN_CORE:-}${AIRLOCK_MYSQL_DSN_CORE_FILE:-}" ] && "$BIN/python" -c \
        "from integrations.mysql.sandbox import root_answers; raise SystemExit(not root_answers())" 2>/dev/null; then
        sandbox_mysql="  Local MariaDB/MySQL at 127.0.0.1:3306: database core, admin airlock_admin (the core-db-readonly profile)."
    else
        sandbox_mysql="  No local MariaDB/MySQL answering as root: the core-db-readonly profile is unavailable."
    fi
fi

"$BIN/python" manage.py migrate --noinput -v0
"$BIN/python" manage.py seed_demo
"$BIN/python" manage.py sync_catalog
# Past requests for the demo's alice, and the model of usual access trained on them.
"$BIN/python" manage.py seed_demo_history
if [ -n "$sandbox" ]; then
    mysql_flag=""
    case "$sandbox_mysql" in *"Local MariaDB"*) mysql_flag=--mysql ;; esac
    "$BIN/python" manage.py sandbox ${postgres_pid:+--postgres-port "$postgres_port" --postgres-password-file "$AIRLOCK_VAR_DIR/sandbox-postgres/superuser-password"} $mysql_flag
    # Airlock and its witness writer act as the IAM users the sandbox made (moto now
    # refuses any other key).
    export AWS_ACCESS_KEY_ID_FILE="$AIRLOCK_VAR_DIR/sandbox-aws-airlock-access-key-id"
    export AWS_SECRET_ACCESS_KEY_FILE="$AIRLOCK_VAR_DIR/sandbox-aws-airlock-secret-access-key"
    export AIRLOCK_WITNESS_ACCESS_KEY_ID_FILE="$AIRLOCK_VAR_DIR/sandbox-aws-witness-access-key-id"
    export AIRLOCK_WITNESS_SECRET_ACCESS_KEY_FILE="$AIRLOCK_VAR_DIR/sandbox-aws-witness-secret-access-key"
    if [ -n "$postgres_pid" ]; then
        export AIRLOCK_PG_DSN_PAYMENTS_FILE="$AIRLOCK_VAR_DIR/sandbox-pg-dsn-payments"
    fi
    if [ -n "$mysql_flag" ]; then
        export AIRLOCK_MYSQL_DSN_CORE_FILE="$AIRLOCK_VAR_DIR/sandbox-mysql-dsn-core"
    fi
    start_sandbox_sshd
    sandbox="$sandbox
$sandbox_postgres
$sandbox_mysql
$sandbox_ssh"
fi

"$BIN/celery" -A airlock worker --without-mingle --without-gossip --loglevel=INFO --concurrency=2 &
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
  Sign in as alice (requester), bob or carol (approvers, and the security role),
  dave (auditor) or admin;
  the passwords are in $AIRLOCK_VAR_DIR/demo-logins.txt.
$sandbox
  Press Ctrl-C to stop everything.

MSG
wait -n
