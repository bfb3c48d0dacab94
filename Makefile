# Fresh machine: `make run` (the whole pipeline locally) and `make test` (unit + local end-to-end tests).
# Both create .venv if absent and install the project; constraints.txt pins every dependency.

VENV ?= .venv
PY := $(VENV)/bin/python
XSTILTS := $(VENV)/bin/xstilts
# torch==2.13.0 comes from the machine's local CPU wheel when there is one (no multi-GB CUDA download).
PIP_FLAGS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
SAMPLE := data/sample/bucc18/test.pairs.tsv

.PHONY: run test install install-dev data compile measure clean help toolchains bench-code-eval bench-train bench-eval

help:
	@echo "make run      run the whole pipeline locally (tiny model, sample data); prints 'report: <path>'"
	@echo "make test     unit tests and the local end-to-end pipeline test"
	@echo "make compile  recompile pipelines/compiled/xstilts.yaml"
	@echo "make measure  time the local pipeline (a cold run, per step and phase, and a cached re-run) and the environment's size"
	@echo "make toolchains      compilers/runtimes and the bwrap sandbox for xstilts code-eval"
	@echo "make bench-code-eval sandboxed execution throughput (programs/s): batched vs one compiler per program"
	@echo "make bench-train     training speed: HF Trainer baseline vs each speed lever (bench-train.json)"
	@echo "make bench-eval      evaluation speed: PyTorch eager fp32 vs onnxruntime setups (bench-eval.json)"

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	touch $@

# checkov lives in its own venv: its pins (packaging<24, networkx<2.7, ...) clash with the project's.
CHECKOV := .tools/checkov/bin/checkov
$(CHECKOV): tools/checkov-constraints.txt
	python3 -m venv .tools/checkov
	.tools/checkov/bin/pip install -q -c tools/checkov-constraints.txt checkov
	touch $@

# `xstilts code-eval` runs Python, JavaScript, TypeScript, Java, C++ and Go in a bubblewrap sandbox. Missing system
# toolchains come from apt (as root; otherwise the command to run is printed). tools/node/package.json pins tsc,
# @types/node and what the supported benchmarks' tests import (MBJSP, HumanEval-JS: lodash; MBTSP, HumanEval-TS:
# mathjs, heap-js), package-lock.json their dependencies; `npm ci` installs exactly that under .tools/node, where
# xstilts looks for them. MBJP, MBCPP and MBGP import only their standard libraries.
NODE_TOOLS := .tools/node/node_modules/.package-lock.json
$(NODE_TOOLS): tools/node/package.json tools/node/package-lock.json
	mkdir -p .tools/node
	cp tools/node/package.json tools/node/package-lock.json .tools/node/
	npm ci --prefix .tools/node --no-audit --no-fund
	touch $@

toolchains: $(NODE_TOOLS)
	@pkgs=""; \
	command -v go >/dev/null || pkgs="$$pkgs golang-go"; \
	command -v bwrap >/dev/null || pkgs="$$pkgs bubblewrap"; \
	command -v g++ >/dev/null || pkgs="$$pkgs g++"; \
	command -v javac >/dev/null || pkgs="$$pkgs default-jdk-headless"; \
	if [ -n "$$pkgs" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends $$pkgs; \
	  else echo "code-eval toolchains missing: sudo apt-get install$$pkgs"; exit 1; fi; \
	fi

bench-train: install
	$(XSTILTS) bench train

bench-eval: install
	$(XSTILTS) bench eval

bench-code-eval: install toolchains
	$(XSTILTS) code-eval --bench --bench-languages python,cpp,go,java,typescript --bench-programs 24

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# data/ is tracked by DVC (data.dvc); the bundled sample is generated deterministically, so a clone without a
# DVC remote rebuilds exactly the tracked version (tests/test_dvc.py checks it against data.dvc).
$(SAMPLE): xstilts/sampledata/generate.py | $(VENV)/.installed
	$(XSTILTS) sample-data --out data/sample --force

data: $(SAMPLE)

run: install data
	$(XSTILTS) run --local

test: install-dev data $(CHECKOV) toolchains
	$(PY) -m pytest

compile: install
	$(XSTILTS) compile --out pipelines/compiled/xstilts.yaml

# Two runs on an empty step cache of their own (cold, then cached): wall times, a per-step table of the cold run
# (wall, import/load/compute/export/parity/write, other), phase totals, the installed environment's size
# (pipelines/measure.py; also as runs-measure/measure.json).
measure: install data
	$(PY) -m pipelines.measure

clean:
	rm -rf runs runs-measure outputs .pytest_cache
