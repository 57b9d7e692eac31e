# stock_ml — everything a person or CI runs. Needs only Python 3.11 (and Java 17 for the Spark engine).
#   make run    set up, then run every pipeline on the bundled sample (env dev)
#   make test   set up, then run the whole test suite (slow end-to-end tests included)
#   make dags   write Airflow DAG files for every env into $(DAGS_DIR) (git-ignored)
#   make viz    build the static kedro-viz site into build/viz
#   make lint   ruff check + format check
#   make init-prod  create prod's PostgreSQL schema and serving tables (idempotent; needs
#               STOCK_ML_POSTGRES_URL in the environment)
#   make mlflow-server  an MLflow tracking server for prod on 127.0.0.1:$(MLFLOW_PORT), backend store
#               STOCK_ML_MLFLOW_BACKEND_URI (PostgreSQL), artifacts under $(MLFLOW_ARTIFACTS)
#   make run-prod   kedro run --env prod (Spark, PostgreSQL serving tables, the MLflow server);
#               PROD_PARAMS adds runtime params, e.g. ingest.source.kind=csv_folder offline

PYTHON   ?= $(shell command -v python3.11 || command -v python3)
VENV     ?= .venv
BIN      := $(VENV)/bin
ENV      ?= dev
ENVS     ?= dev test prod
DAGS_DIR ?= airflow_dags
DAG_PIPELINES ?= daily,retraining,backfill
# Where the generated DAGs run the project from (override per deployment or with
# STOCK_ML_PROJECT_PATH on the worker).
PROJECT_PATH ?= $(CURDIR)
MLFLOW_PORT ?= 5000
MLFLOW_ARTIFACTS ?= $(CURDIR)/data/prod_stock_data/mlartifacts
PROD_PARAMS ?=
STAMP    := $(VENV)/.installed

# Never prompt (CI has no terminal) and never phone home.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: install run test dags viz lint clean init-prod mlflow-server run-prod

install: $(STAMP)

# Locked versions (requirements.lock, from `.venv/bin/uv pip compile pyproject.toml --extra dev
# --python-version 3.11 --no-header -o requirements.lock`, which keeps the pins already in the
# file) so every clone resolves the same stack; uv because pip's resolver backtracks for minutes
# on Airflow.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock -e ".[dev]"
	touch $@

# Rich wraps log lines at 80 columns when not on a terminal; keep output paths on one line.
run: export COLUMNS ?= 180
run: install
	$(BIN)/kedro run --env $(ENV)

# Two workers (pytest-xdist), one test file each at a time: module fixtures stay in one process.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=20

# Order-only on the venv: generating DAGs must not reinstall anything. Generating reads conf
# only, yet kedro-mlflow sets up each env's tracking store: a scratch store (a temporary folder of
# this run's own, so parallel runs never share it) stands in for prod's server, which the machine
# that builds the DAGs need not reach.
# An env's DAGs are its groups plus, with model_scope per_symbol, one training DAG per symbol
# (stock_ml.model_scope); its old DAG files go first, so a symbol taken out of conf loses its DAG.
dags: | $(STAMP)
	mkdir -p $(DAGS_DIR)
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	for env in $(ENVS); do \
	  $(BIN)/python -m stock_ml.model_scope --env $$env --groups $(DAG_PIPELINES) > "$$scratch/pipelines" || exit 1; \
	  pipelines=$$(tail -n 1 "$$scratch/pipelines"); \
	  rm -f $(DAGS_DIR)/stock_ml_$${env}_*_dag.py; \
	  MLFLOW_TRACKING_URI=sqlite:///$$scratch/mlflow.db \
	  $(BIN)/kedro airflow create --env $$env --pipelines $$pipelines \
	    --jinja-file airflow/dag_template.j2 --target-dir $(DAGS_DIR) --group-by memory \
	    --params "project_path=$(PROJECT_PATH)" || exit 1; \
	done
	@echo "DAG files in $(DAGS_DIR):" && ls $(DAGS_DIR)

init-prod: install
	$(BIN)/kedro run --env prod --pipeline init_serving_store

# The backend database must exist (createdb); the URL (with its password) stays in the environment.
mlflow-server: install
	@test -n "$$STOCK_ML_MLFLOW_BACKEND_URI" || { echo "set STOCK_ML_MLFLOW_BACKEND_URI (postgresql+psycopg://user:pass@host:5432/mlflow)"; exit 2; }
	$(BIN)/mlflow server --backend-store-uri "$$STOCK_ML_MLFLOW_BACKEND_URI" \
	  --artifacts-destination $(MLFLOW_ARTIFACTS) --host 127.0.0.1 --port $(MLFLOW_PORT)

run-prod: export COLUMNS ?= 180
run-prod: install
	$(BIN)/kedro run --env prod $(if $(PROD_PARAMS),--params "$(PROD_PARAMS)")

viz: | $(STAMP)
	$(BIN)/kedro viz build
	@echo "kedro-viz site in build/ (open build/index.html through a web server, e.g. python -m http.server -d build)"

lint: | $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(DAGS_DIR) build data/*_stock_data/0* data/*_stock_data/mlflow.db data/*_stock_data/mlartifacts
