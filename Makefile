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
