# Airlock: `make run` starts everything on embedded defaults, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

# Secrets for local runs live in var/ (0600), generated on first use, never in code.
KEYS := var/django-secret-key var/encryption-key var/export-hmac-key var/audit-signing-key
export DJANGO_SECRET_KEY_FILE ?= $(CURDIR)/var/django-secret-key
export AIRLOCK_ENCRYPTION_KEY_FILE ?= $(CURDIR)/var/encryption-key
export AIRLOCK_EXPORT_HMAC_KEY_FILE ?= $(CURDIR)/var/export-hmac-key
export AIRLOCK_AUDIT_SIGNING_KEY_FILE ?= $(CURDIR)/var/audit-signing-key

# The suite runs on the real services (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/airlock
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

# Benchmarks run on a database of their own, and the machine's PostgreSQL as provider target.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/airlock_bench
BENCH_TARGET_DSN ?= postgresql://postgres@127.0.0.1:5432/airlock_bench
BENCH_BROKER_URL ?= redis://127.0.0.1:6379/14

.DELETE_ON_ERROR:
.PHONY: run test test-faults bench lint audit audit-deps install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

var/django-secret-key var/export-hmac-key: | $(STAMP)
	@mkdir -p var && umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > $@

var/audit-signing-key: | $(STAMP)
	@mkdir -p var && umask 077 && openssl genpkey -algorithm ed25519 -out $@

var/encryption-key: | $(STAMP)
	@mkdir -p var && umask 077 && $(BIN)/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" > $@

# From npm, pinned in package-lock.json: axe-core for the browser journey's
# accessibility checks (never served), and Chart.js for /insights/, copied where
# Django serves static files.
NPM ?= npm
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --silent
	touch $@

# `make run` goes on without npm: the charts are an addition to the tables.
CHARTJS := static/vendor/chart.umd.min.js
CHARTJS_SOURCE := node_modules/chart.js/dist/chart.umd.min.js
$(CHARTJS): package.json package-lock.json
	@if [ $(CHARTJS_SOURCE) -nt package-lock.json ] || $(NPM) ci --no-audit --no-fund --silent; then \
		mkdir -p static/vendor && cp $(CHARTJS_SOURCE) $@; \
	else \
		echo "npm failed or is missing: /insights/ will show its tables but draw no chart"; \
	fi

run: $(STAMP) $(KEYS) $(CHARTJS)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} BIN=$(BIN) ./scripts/run-dev.sh

test: $(STAMP) $(KEYS) $(AXE) $(CHARTJS)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	$(BIN)/pytest $(PYTEST_ARGS)

# The chaos suite: workers killed, Redis restarted, OpenBao frozen (a few minutes).
test-faults: $(STAMP) $(KEYS)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	$(BIN)/pytest -m faults -s $(PYTEST_ARGS)

bench: $(STAMP) $(KEYS)
	psql "$(BENCH_DATABASE_URL)" -c "SELECT 1" >/dev/null 2>&1 || \
		psql "$(subst /airlock_bench,/postgres,$(BENCH_DATABASE_URL))" -c "CREATE DATABASE airlock_bench"
	psql "$(BENCH_DATABASE_URL)" -qc "DO \$$\$$ BEGIN CREATE ROLE bench_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$$\$$"
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py migrate --noinput -v0
	DATABASE_URL=$(BENCH_DATABASE_URL) AIRLOCK_PG_DSN_BENCH=$(BENCH_TARGET_DSN) AIRLOCK_HTTPS=off \
		CELERY_BROKER_URL=$(BENCH_BROKER_URL) $(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Static security checks on our code; each finding is fixed or justified inline
# (`# nosec Bxxx  # why`), where review sees it.
audit: $(STAMP)
	$(BIN)/bandit --quiet --recursive airlock lib audit accounts broker approvals integrations airlock_cli

# Known vulnerabilities in the installed dependencies. --strict fails when a
# package cannot be checked (a registry without vulnerability data).
audit-deps: $(STAMP)
	$(BIN)/pip-audit --strict --progress-spinner off

clean:
	rm -rf $(VENV) var static/vendor
