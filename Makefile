# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`. Nothing
# is installed system-wide except by `make postgres`, which you run yourself (sudo apt-get).
PYTHON ?= python3
VENV ?= .venv
# torch is pinned and installed first so that nothing else pulls a newer one. On this project's
# machines torch==2.13.0 is a CPU wheel on local disk; from plain PyPI the same pin is a CUDA
# build (what a GPU box wants). CPU-only box elsewhere:
#   make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?= configs/train.yaml
HPO_CONFIG ?= configs/hpo.yaml
EXPERIMENTS_DIR ?= experiments
ARGS ?=
# the contract's `pytest -v --cov=src/dataaug_multi_both`, on two workers, one test file each:
# the integration tests are mostly subprocesses waiting on each other; one torch thread per
# process keeps the two cores from being oversubscribed. `make coverage` also measures the
# commands those tests start as subprocesses (about 1.9x the time)
PYTEST_ARGS ?= -v --cov=src/dataaug_multi_both -n 2 --dist loadfile --durations=15

.DEFAULT_GOAL := help
.PHONY: help install postgres demo demo-train test coverage test-unit lint format train hpo resume evaluate clean-artifacts \
        list-studies docker-build docker-build-cuda docker-run bench bench-gpu

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package (once)

# where the tests look for PostgreSQL's server binaries (tests/integration/conftest.py)
HAVE_POSTGRES := command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1

postgres: ## opt-in: sudo apt-get install postgresql (system-wide, starts a cluster on 5432) for the PostgreSQL tests
	@$(HAVE_POSTGRES) || \
	  { echo "installing Debian's postgresql package"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

demo: $(STAMP) ## the main job: a small HPO study (MiniLM vs tiny-bert) on synthetic data, then its test evaluation
	$(BIN)/python -m dataaug_multi_both.cli.hpo --config configs/hpo_demo.yaml --study-name demo \
	  --study-dir experiments/study_demo $(ARGS)
	$(BIN)/python -m dataaug_multi_both.cli.evaluate_study --study-dir experiments/study_demo
	$(BIN)/python -m dataaug_multi_both.cli.list_studies

demo-train: $(STAMP) ## one training run of MiniLM on the synthetic data (configs/demo.yaml)
	$(BIN)/python -m dataaug_multi_both.cli.train --config configs/demo.yaml $(ARGS)

test: $(STAMP) ## the whole test suite (unit + integration); the PostgreSQL ones need `make postgres`
	@status=0; OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	  $(HAVE_POSTGRES) || echo "PostgreSQL tests skipped: run \`make postgres\` first"; \
	  exit $$status

coverage: $(STAMP) ## make test, measuring the CLI subprocesses too (the full coverage figure; ~18 min)
	@OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS) --cov-config=tests/coverage-subprocess.toml

test-unit: $(STAMP) ## unit tests only
	$(BIN)/python -m pytest -m "not integration"

lint: $(STAMP) ## ruff, black --check, mypy
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/black --check -q src tests benchmarks
	$(BIN)/mypy src

format: $(STAMP) ## ruff --fix and black
	$(BIN)/ruff check --fix -q src tests benchmarks
	$(BIN)/black -q src tests benchmarks

train: $(STAMP) ## train with CONFIG=... ARGS="--model tiny-bert --dataset synthetic"
	$(BIN)/python -m dataaug_multi_both.cli.train --config $(CONFIG) $(ARGS)

resume: $(STAMP) ## resume a run: CHECKPOINT_PATH=experiments/trial_X/checkpoints/epoch_003.pt [ARGS=--max-epochs 15]
	@test -n "$(CHECKPOINT_PATH)" || (echo "usage: make resume CHECKPOINT_PATH=..." && exit 2)
	$(BIN)/python -m dataaug_multi_both.cli.train --resume-from $(CHECKPOINT_PATH) $(ARGS)

hpo: $(STAMP) ## hyperparameter study: HPO_CONFIG=configs/hpo.yaml ARGS="--num-trials 50"
	$(BIN)/python -m dataaug_multi_both.cli.hpo --config $(HPO_CONFIG) $(ARGS)

evaluate: $(STAMP) ## evaluate a study's best trial on its test split: STUDY_DIR=experiments/study_X
	@test -n "$(STUDY_DIR)" || (echo "usage: make evaluate STUDY_DIR=experiments/study_X" && exit 2)
	$(BIN)/python -m dataaug_multi_both.cli.evaluate_study --study-dir $(STUDY_DIR) $(ARGS)

clean-artifacts: $(STAMP) ## preview what cleanup would remove under experiments/ (deletes nothing; deleting is `cleanup` without --dry-run)
	$(BIN)/python -m dataaug_multi_both.cli.cleanup --orphaned-only --dry-run $(ARGS)

list-studies: $(STAMP) ## the studies under EXPERIMENTS_DIR
	$(BIN)/python -m dataaug_multi_both.cli.list_studies --experiments-dir $(EXPERIMENTS_DIR) $(ARGS)

BENCH_OUT ?= docs/measurements
BENCH_ARGS ?=

$(VENV)/.bench-stamp: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	touch $@

bench: $(VENV)/.bench-stamp ## the benchmarks against HF Trainer and the study-scale curves, quick mode (BENCH_ARGS=--full: minilm, longer)
	cd benchmarks && ../$(BIN)/python throughput.py $(BENCH_ARGS) --json ../$(BENCH_OUT)/throughput.json
	cd benchmarks && ../$(BIN)/python checkpoint_cost.py $(BENCH_ARGS) --json ../$(BENCH_OUT)/checkpoint_cost.json
	cd benchmarks && OMP_NUM_THREADS=1 ../$(BIN)/python study_footprint.py --json ../$(BENCH_OUT)/study_footprint.json
	cd benchmarks && ../$(BIN)/python hpo_overhead.py $(BENCH_ARGS) --json ../$(BENCH_OUT)/hpo_overhead.json
	cd benchmarks && ../$(BIN)/python study_scale.py --quick --json ../$(BENCH_OUT)/study_scale_quick.json --plots ../$(BENCH_OUT)/study_scale_quick

GPU_DEVICE ?= cuda
bench-gpu: $(VENV)/.bench-stamp ## on a GPU box: our loop against HF Trainer, MiniLM and BERT-base shapes, bf16 (GPU_DEVICE=cpu: dry mode)
	cd benchmarks && ../$(BIN)/python gpu_speed.py --device $(GPU_DEVICE) --out ../$(BENCH_OUT)/gpu_speed_$(GPU_DEVICE)

IMAGE ?= dataaug-multi-both:latest
# the contract's `--gpus all`; on a machine without NVIDIA's container toolkit: DOCKER_GPUS=
DOCKER_GPUS ?= --gpus all
CMD ?=

docker-build: ## build the CPU image dataaug-multi-both:latest (needs a Docker engine)
	docker build -f docker/Dockerfile -t $(IMAGE) .

docker-build-cuda: ## build the CUDA image under the same tag (torch's CUDA wheels from PyPI)
	docker build -f docker/Dockerfile --build-arg TORCH_INDEX=https://pypi.org/simple -t $(IMAGE) .

docker-run: ## the demo (study, evaluation, listing) in the image, ./ at /workspace, as you; CMD="train ..." one command; DOCKER_GPUS= without GPUs
	docker run -it --rm $(DOCKER_GPUS) --user "$$(id -u):$$(id -g)" -e HOME=/tmp \
	  -v "$(CURDIR)":/workspace $(IMAGE) $(CMD)
