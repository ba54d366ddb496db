# The two commands of the README. Both create the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   ?= data

.PHONY: run test test-fast bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

## run: collect from the simulator into ./data, then show what the catalog knows and verify it
run: $(STAMP)
	$(BIN)/mdcsql init $(DATA)
	$(BIN)/mdcsql collect $(DATA) --source sim --symbols AAPL,MSFT,SPY --events 200000
	$(BIN)/mdcsql session list $(DATA)
	$(BIN)/mdcsql catalog stats $(DATA)
	$(BIN)/mdcsql verify $(DATA)
	$(BIN)/mdcsql policy explain $(DATA) --changes-only
	$(BIN)/mdcsql capacity $(DATA) --horizon 30d
	$(BIN)/mdcsql sql $(DATA) "SELECT symbol, count(*) AS trades, min(price) AS low, max(price) AS high, max(ts) AS last_trade FROM trades GROUP BY symbol ORDER BY symbol"

## test: the whole suite (crash loops included)
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/views.py

clean:
	rm -rf $(VENV) $(DATA) build *.egg-info
