# Adversarial loss landscape study (Liu et al., NeurIPS 2020).
#   make reproduce [PROFILE=smoke|quick|paper]   run every notebook into outputs/$(PROFILE)/
#   make test                                     layer contract + unit tests + freshness + nbval
# Both create .venv and install the package on first use.

PROFILE ?= quick
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# A run with SET overrides writes into its own folder, named after them (the runner names it alike);
# overrides of only the device, progress bars or interactive views (NotebookParams.NOT_RESULTS) make no variant.
VARIANT_SET := $(strip $(filter-out device=% progress=% interactive=% variant=%,$(SET)))
VARIANT := $(shell printf '%s' '$(VARIANT_SET)' | tr -c 'A-Za-z0-9.=-' '_' | cut -c1-60)
OUT := outputs/$(PROFILE)$(if $(VARIANT),/variants/$(VARIANT))
SOURCES := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
NAMES := $(notdir $(SOURCES:.py=))
PACKAGE := $(shell find landscape_core -name '*.py')
ZOO_USERS := 03_hessian 04_cosine_similarity 06_connectivity 07_local_lipschitzness
NBVAL := -p tests.nbval_numbers --nbval --nbval-sanitize-with tests/sanitize.cfg --nbval-kernel-name python3

.PHONY: help setup reproduce runs runs-status slurm-test test lint unit nbval report report-test paper-dryrun lab notebooks sync bench pilot clean check-params check-profile summary
.NOTPARALLEL:
.DELETE_ON_ERROR:

help:
	@sed -n '2,4p' Makefile | sed 's/^# *//'
	@echo "other targets: runs runs-status slurm-test report paper-dryrun lab notebooks sync bench pilot clean setup check-params summary"

# --- environment ---------------------------------------------------------------------------------
$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m landscape_core git-filter
	touch $@

setup: $(INSTALLED)

# The unit tests also test `diagnose --robustbench`: the optional extra, kept out of the study's own install.
EXTRAS := $(VENV)/.installed-robustbench
$(EXTRAS): $(INSTALLED)
	$(PY) -m pip install --quiet -e ".[test,robustbench]"
	touch $@

# --- the study -----------------------------------------------------------------------------------
# One executed notebook per source; re-run only when its source, its params or the package changed.
# The runner validates the params first and moves the notebook into $(OUT) only on success.
reproduce: $(INSTALLED) check-profile $(NAMES:%=$(OUT)/%.ipynb)
	@$(PY) -m landscape_core summary --profile $(PROFILE) $(if $(VARIANT),--variant $(VARIANT))

# SET="device=cuda seed=1" overrides parameters of every notebook ("01.sgd_lr=0.2": notebook 01 only;
# "training.width=8": a parameter of a section), into $(OUT) = outputs/$(PROFILE)/variants/<SET>/ (the
# run store is shared); $(OUT)/.set remembers the last SET, so changing a device override re-runs.  It is updated when the Makefile is read (not by
# a rule that always runs), so `make -n reproduce` lists only the notebooks that would run.
ifeq (,$(findstring n,$(firstword -$(MAKEFLAGS))))
$(shell mkdir -p $(OUT); echo '$(SET)' | cmp -s - $(OUT)/.set || echo '$(SET)' > $(OUT)/.set)
endif
$(OUT)/.set:
	@mkdir -p $(OUT); echo '$(SET)' > $@

# Notebooks 03, 04, 06 and 07 analyse 02's models: 02's params file is one of their inputs.
$(ZOO_USERS:%=$(OUT)/%.ipynb): params/$(PROFILE)/02_gradient_dynamics.yaml

$(OUT)/%.ipynb: notebooks/%.py params/$(PROFILE)/%.yaml $(PACKAGE) $(OUT)/.set | $(INSTALLED)
	$(PY) -m landscape_core run $< --profile $(PROFILE) $(SET:%=--set %)

# The quick profile's pilot: training diagnostics (no verdicts) that chose its settings.
pilot: $(INSTALLED)
	$(PY) -m landscape_core pilot

# Every training run of the profile's notebooks, ahead of `make reproduce`, through submitit; then, as a
# second phase, 06's Bezier curves once their end points are in the store:
#   make runs PROFILE=paper EXECUTOR=slurm JOBS=16 GPUS=1 PARTITION=gpu TIME=600   (a Slurm job array)
#   make runs EXECUTOR=local JOBS=2 THREADS=1                                      (processes here)
#   make runs PROFILE=paper DRY_RUN=1                                              (what, and its cost)
#   make runs-status PROFILE=paper                 (each run: done / running / queued / failed, job id, log)
# also CPUS=, MEM= (GB), DEVICE=, NOTEBOOKS="02_gradient_dynamics 05_pas_table1", NO_WAIT=1 (Slurm: submit, return),
# BATCHED=27 (up to 27 compatible runs - a Fig 5 grid, a zoo - trained together as one stacked model per job)
EXECUTOR ?= local
RUNS_ARGS = --profile $(PROFILE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) $(SET:%=--set %)
runs: $(INSTALLED)
	$(PY) -m landscape_core runs $(RUNS_ARGS) --executor $(EXECUTOR) $(if $(JOBS),--jobs $(JOBS)) \
	  $(if $(THREADS),--threads $(THREADS)) $(if $(GPUS),--gpus $(GPUS)) $(if $(CPUS),--cpus $(CPUS)) \
	  $(if $(MEM),--mem-gb $(MEM)) $(if $(DEVICE),--device $(DEVICE)) $(if $(PARTITION),--partition $(PARTITION)) \
	  $(if $(TIME),--time-min $(TIME)) $(if $(DRY_RUN),--dry-run) $(if $(NO_WAIT),--no-wait) \
	  $(if $(BATCHED),--batched $(BATCHED))

runs-status: | $(INSTALLED)
	@$(PY) -m landscape_core runs $(RUNS_ARGS) --status

check-params: | $(INSTALLED)
	@$(PY) -m landscape_core check-params

check-profile: | $(INSTALLED)
	@$(PY) -m landscape_core check-params --profile $(PROFILE)

summary: | $(INSTALLED)
	@$(PY) -m landscape_core summary --profile $(PROFILE)

# --- tests ---------------------------------------------------------------------------------------
test: lint unit nbval report-test paper-dryrun slurm-test

# The floors of landscape_core (pyproject.toml, [tool.importlinter]): no import from a floor above.
lint: $(INSTALLED)
	$(VENV)/bin/lint-imports

unit: $(EXTRAS)
	$(PY) -m pytest tests -q --ignore=tests/browser --ignore=tests/dryrun --ignore=tests/slurm

nbval: $(INSTALLED)
	env -u LANDSCAPE_INTERACTIVE $(PY) -m pytest $(NBVAL) notebooks -q

# The smoke report (from what nbval's runs left in outputs/smoke) and `make lab` (every notebook opened from its
# .py, run, one interactive control moved, saved without a change) in headless Chromium.
report-test: $(INSTALLED)
	$(PY) -m landscape_core report --profile smoke
	$(PY) -m pytest tests/browser -q

# The paper profile end to end at tiny sizes (params/paper/dry_run.yaml) on MNIST / CIFAR10 files written in
# torchvision's formats, downloads off, in a scratch folder: a paper-profile mistake fails here, not on a GPU.
paper-dryrun: $(INSTALLED)
	$(PY) -m pytest tests/dryrun -q

# `make runs EXECUTOR=slurm` against a real single-node Slurm started here (Debian's slurmctld, slurmd, munge;
# installed through apt when missing; every daemon it started is stopped by pid): job arrays, preemption and
# time limits requeued and resumed bitwise, failures, resources read back, `make runs-status`.
slurm-test: $(INSTALLED)
	$(PY) -m pytest tests/slurm -q

# outputs/$(PROFILE)/report/index.html: every claim, figure, table and run, and the notebooks as HTML.
report: $(INSTALLED)
	$(PY) -m landscape_core report --profile $(PROFILE) $(if $(VARIANT),--variant $(VARIANT))

# --- notebooks -----------------------------------------------------------------------------------
# Re-execute the committed references (smoke defaults, the nbval baseline) from their .py sources,
# from an empty smoke run store: CI starts from a clean clone and trains every smoke model itself.
notebooks: $(INSTALLED)
	rm -rf outputs/smoke
	@for nb in $(SOURCES); do $(PY) -m landscape_core reference $$nb || exit 1; done

# Code from the .py into the .ipynb, outputs kept (one direction only: jupytext --sync lets the
# newest file win).  Re-run `make notebooks` before committing so outputs match the code.
sync: $(INSTALLED)
	$(VENV)/bin/jupytext --to ipynb --update $(SOURCES)

# JupyterLab on the repository, opened on notebooks/: a .py opens as its paired notebook, interactive views
# are on (landscape_core/cli/lab.py).  LAB_ARGS="--no-browser --port 8899 --IdentityProvider.token=..."
# passes options to JupyterLab; as root (containers) --allow-root is added.
LAB_ARGS ?=
lab: $(INSTALLED)
	$(PY) -m landscape_core lab $(LAB_ARGS)

bench: $(INSTALLED)
	$(PY) -m landscape_core.cli.bench $(if $(DEVICE),--device $(DEVICE)) $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf outputs
