# Footnote: `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test lint bench bench-quick eval index clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

run: $(STAMP)
	$(PY) -m bot start

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

EVAL := ../shared/eval
SUPPORT_SETS = $(sort $(wildcard tests/data/support_*.jsonl))
CITED := var/eval/cited
# the tuning set and the held-out ones on whole chunks ("as cited") are reported beside the quoted sets
CITED_REPORTED = $(foreach name,news_tune news_final blind_test news_check,$(CITED)/support_$(name)_cited.jsonl)

# the labelled sets again with the chunks that hold their passages as passages (eval/cited_support.py)
$(CITED)/.made: $(SUPPORT_SETS) tests/data/cited_labels.jsonl eval/cited_support.py index/chunking.py $(STAMP)
	$(PY) eval/cited_support.py $(CITED) $(SUPPORT_SETS)
	touch $@

eval: $(STAMP) $(CITED)/.made
	$(PY) -m bot eval $(EVAL)/news_2023h1/questions.jsonl --split heldout --min-precision 0.8 --min-abstention 0.9
	$(PY) -m bot eval $(EVAL)/dev_questions.jsonl --min-precision 0.85 --min-abstention 1.0 --support $(SUPPORT_SETS) $(CITED_REPORTED)
	$(PY) -m bot eval $(EVAL)/squad2_sample/questions.jsonl --min-precision 0.85

index: $(STAMP)
	$(PY) -m bot index

bench: $(VENV)/.bench-installed
	$(PY) -m benchmarks

bench-quick: $(VENV)/.bench-installed
	$(PY) -m benchmarks --quick

clean:
	rm -rf var
