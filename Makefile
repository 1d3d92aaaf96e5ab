# The course's commands. `make lab` to learn, `make test` to check everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
COURSE_SIZE ?= small
JOBS ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install lab test test-small course samples bench export clean-nbs

help:
	@echo "make lab      install what is missing, then start JupyterLab on nbs/ (127.0.0.1)"
	@echo "make test     install what is missing, then run every notebook (tiny preset) and tests/"
	@echo "make test-small  run every notebook at the small preset (the default a learner gets) with its assertions"
	@echo "make course   execute every notebook at COURSE_SIZE (default small) into _build/ (notebooks + HTML)"
	@echo "make samples  build the offline datasets for COURSE_SIZE"
	@echo "make bench    run the benchmarks in bench/"
	@echo "make export   notebooks -> course_lib (nbdev-export) and clean the notebooks (nbdev-clean)"

install: $(STAMP)

# Re-runs only when the pins or the package metadata change: a second `make install` is a no-op.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@bash .ci/install_browser.sh
	@$(BIN)/python -c "import course_lib; print('course_lib ok:', course_lib.__file__)"
	@touch $(STAMP)

lab: install
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --allow-root --ServerApp.root_dir=nbs --LabApp.default_url=/lab/tree/index.ipynb

test: install
	# one torch thread per notebook kernel: two kernels run side by side on the test machine
	COURSE_SIZE=tiny OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -n $(JOBS) --dist loadfile -p no:cacheprovider \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=600 nbs tests

# Every notebook at `small`, the preset a learner gets by default, with all its assertions (CI runs this after `make test`).
test-small: install
	COURSE_SIZE=small OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -n $(JOBS) --dist loadfile -p no:cacheprovider \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=1200 nbs

course: install
	@mkdir -p _build; total=0; \
	for nb in nbs/[0-9]*.ipynb; do \
	  name=$$(basename $$nb .ipynb); t0=$$(date +%s.%N); \
	  COURSE_SIZE=$(COURSE_SIZE) $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=3600 \
	    --output-dir _build --output $$name $$nb >_build/$$name.log 2>&1 || { echo "FAILED $$name (see _build/$$name.log)"; exit 1; }; \
	  $(BIN)/jupyter nbconvert --to html _build/$$name.ipynb >>_build/$$name.log 2>&1; \
	  dt=$$(echo "$$(date +%s.%N) - $$t0" | bc); total=$$(echo "$$total + $$dt" | bc); \
	  printf "%-24s %8.1f s\n" $$name $$dt; \
	done; printf "%-24s %8.1f s   (preset %s, output in _build/)\n" total $$total $(COURSE_SIZE)

samples: install
	$(BIN)/python data_scripts/build_samples.py --size $(COURSE_SIZE)

bench: install
	$(BIN)/python bench/bench_learner.py
	$(BIN)/python bench/scale_bench.py

export: install
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean
