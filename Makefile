# Two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/tokenbudget.db
PORT ?= 8501
HOST ?= 127.0.0.1
API_HOST ?= 127.0.0.1
API_PORT ?= 8000

.PHONY: run test lint demo-data clean api run-due bench mutate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(DB): | $(VENV)/.installed
	mkdir -p $(dir $(DB))
	$(BIN)/tokenbudget --store sqlite:///$(DB) demo-data

demo-data: $(VENV)/.installed
	mkdir -p $(dir $(DB))
	$(BIN)/tokenbudget --store sqlite:///$(DB) demo-data

run: $(VENV)/.installed $(DB)
	TOKENBUDGET_STORE=$${TOKENBUDGET_STORE:-sqlite:///$(DB)} $(BIN)/streamlit run app.py \
		--server.port $(PORT) --server.address $(HOST)

api: $(VENV)/.installed $(DB)
	TOKENBUDGET_STORE=$${TOKENBUDGET_STORE:-sqlite:///$(DB)} $(BIN)/uvicorn --factory \
		budget.api:from_settings --host $(API_HOST) --port $(API_PORT)

# the scheduled pass once, by hand: `make run-due ARGS=--dry-run`
run-due: $(VENV)/.installed $(DB)
	TOKENBUDGET_STORE=$${TOKENBUDGET_STORE:-sqlite:///$(DB)} $(BIN)/tokenbudget run-due $(ARGS)

# lint and types first (seconds), then every test
test: lint
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

# timings at 800, 20,000 and 100,000 attributes into benchmarks/results.md (about 15 minutes;
# the data sets are built once into benchmarks/.data). One size: `make bench ARGS="--sizes small"`
bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.bench $(ARGS)

# mutation testing over the fast tests ([tool.mutmut] in pyproject.toml), one module at a
# time, then the scores with and without message-only mutants (mutants/ is mutmut's work
# folder). Slow on 2 cores: `make mutate MUTATE=budget/core.py`, `MUTMUT_CHILDREN=2`
MUTATE ?= budget/core.py budget/tokens.py budget/automation.py \
	$(wildcard budget/service.py budget/service/*.py)
MUTMUT_CHILDREN ?= 1
mutate: $(VENV)/.installed-test
	rm -f mutants/mutmut-stats.json  # which test covers what: collected afresh, tests change
	@for f in $(MUTATE); do \
		m=$$(echo "$${f%.py}" | sed 's|/__init__$$||; s|/|.|g'); \
		echo "== mutmut: $$f"; \
		$(BIN)/mutmut run --max-children $(MUTMUT_CHILDREN) "$$m.x*" || exit 1; \
	done
	$(BIN)/python -m tests.support.mutation_scores $(MUTATE)

clean:
	rm -rf $(VENV) test-output
