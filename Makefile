# unlearnbench developer targets. `make help` lists them.
PY ?= .venv/bin/python
RUN = HYDRA_FULL_ERROR=1 $(PY) -m unlearnbench
DATA ?= ../shared/data

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

install: ## create .venv and install unlearnbench with test dependencies (as the README says)
	python3 -m venv .venv
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1 -e ".[dev]"

test: ## fast test suite (CPU, < 5 min on 2 cores)
	$(PY) -m pytest -q

test-slow: ## slow tests (real-data sanity checks, launchers)
	$(PY) -m pytest -q -m slow

test-gpu: ## tests that need CUDA
	$(PY) -m pytest -q -m gpu

run: ## the default job: digits, mlp, random 10% forget, finetune
	$(RUN)

smoke: ## every stage in seconds (debug=smoke)
	$(RUN) debug=smoke

fashion: ## Fashion-MNIST + mlp, full pipeline on the real data in $(DATA)
	$(RUN) dataset=fashion_mnist data_root=$(DATA) model=mlp

sweep-example: ## a 2-method x 2-seed sweep on digits, then its table
	$(RUN) -m method=finetune,gradient_ascent seed=0,1
	$(PY) -m unlearnbench.compare outputs/runs

bench: ## time engine vs a textbook loop, every stage, a model bank, MIA scoring (BENCH_ARGS=...)
	$(PY) scripts/bench.py $(BENCH_ARGS)

compare: ## table of every run under outputs/ (Markdown)
	$(PY) -m unlearnbench.compare outputs/runs

cache-list: ## entries of the model cache under outputs/cache (stage, key, size, age)
	$(PY) -m unlearnbench.cache_cli list --cache-dir outputs/cache

cache-du: ## disk use of the model cache per stage
	$(PY) -m unlearnbench.cache_cli du --cache-dir outputs/cache

clean: ## remove run dirs and the model cache under outputs/
	rm -rf outputs/runs outputs/cache outputs/multirun

.PHONY: help install test test-slow test-gpu run smoke fashion sweep-example bench compare cache-list cache-du clean
