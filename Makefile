# gandef_tf: every table and figure of the paper is one target.
#   make install; make test; make table2 PRESET=quick
PYTHON ?= python
PRESET ?= paper
DATASETS ?= mnist cifar10
SEEDS ?= 0
METHODS ?= vanilla pure_pgd mix_pgd logit_pairing gandef
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test
install:
	$(PYTHON) -m pip install -e ".[dev]"

test:
	$(PYTHON) -m pytest -q

ALL_METHODS = $(METHODS) gandef_v1
comma = ,
SEED_LIST = $(subst $(comma), ,$(SEEDS))

.PHONY: results
# Train (or resume, or reuse) and evaluate every run that the tables and figures read.
results:
	@set -e; for d in $(DATASETS); do for m in $(ALL_METHODS); do for s in $(SEED_LIST); do \
	  $(PYTHON) -m experiments.evaluate --preset=$(PRESET) --dataset=$$d --method=$$m --seed=$$s --verbose=2; \
	done; done; done
