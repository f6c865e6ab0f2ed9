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
	$(PYTHON) -m pip install -e ".[dev,eval]"

test:
	$(PYTHON) -m pytest -q

ALL_METHODS = $(METHODS) gandef_v1
comma = ,
SEED_LIST = $(subst $(comma), ,$(SEEDS))

# Train (or resume, or reuse) and evaluate every run that the tables and figures read.
# One target per run, so independent runs go in parallel with `make -j N results`.
RUN_IDS = $(foreach d,$(subst $(comma), ,$(DATASETS)),$(foreach m,$(ALL_METHODS),$(foreach s,$(SEED_LIST),run.$(d).$(m).$(s))))
run_word = $(word $(2),$(subst ., ,$(1)))
.PHONY: results $(RUN_IDS)
results: $(RUN_IDS)
$(RUN_IDS): run.%:
	$(PYTHON) -m experiments.evaluate --preset=$(PRESET) --dataset=$(call run_word,$*,1) \
	  --method=$(call run_word,$*,2) --seed=$(call run_word,$*,3) --verbose=2 $(RUN_FLAGS)

# --- Tables and figures: train/evaluate what is missing (`results`), then render from the
# saved runs into figures/$(PRESET)/ (Tables 3-4, being preset-free, into figures/).
#   make table2 PRESET=quick DATASETS=mnist SEEDS=0,1     (comma or space separated)
space := $(subst ,, )
DATASET_LIST = $(subst $(comma), ,$(DATASETS))
join_commas = $(subst $(space),$(comma),$(strip $(1)))
RENDER_FLAGS = --preset=$(PRESET) --datasets=$(call join_commas,$(DATASET_LIST)) \
	--seeds=$(call join_commas,$(SEED_LIST))
# The runs each output reads; ALL_METHODS is overridden so `results` trains only these.
TABLE2_METHODS = vanilla pure_pgd mix_pgd logit_pairing gandef
FIG2_METHODS = pure_pgd mix_pgd logit_pairing gandef gandef_v1
FIG4_METHODS = pure_pgd mix_pgd logit_pairing gandef

# RESULTS_DONE=1 skips the `results` step (set by `all`, which runs it once for every output).
need_results = $(if $(RESULTS_DONE),,$(MAKE) results PRESET=$(PRESET) SEEDS="$(SEED_LIST)" $(1))

.PHONY: table2 fig2 fig3 fig4 roc gamma_sweep table3 table4 all smoke
table2 fig3:
	$(call need_results,DATASETS="$(DATASET_LIST)" ALL_METHODS="$(TABLE2_METHODS)")
	$(PYTHON) -m experiments.$@ $(RENDER_FLAGS)

fig4:
	$(call need_results,DATASETS="$(DATASET_LIST)" ALL_METHODS="$(FIG4_METHODS)")
	$(PYTHON) -m experiments.fig4 $(RENDER_FLAGS)

# Beyond the paper: the discriminator's ROC per attack, from GanDef's saved predictions.
roc:
	$(call need_results,DATASETS="$(DATASET_LIST)" ALL_METHODS=gandef)
	$(PYTHON) -m experiments.roc $(RENDER_FLAGS)

# Beyond the paper: GanDef for several gamma (one run each; hours at PRESET=quick on a
# CPU, so not part of `all`).  make gamma_sweep PRESET=quick GAMMAS=0,0.5,1,2,4
GAMMAS ?= 0,0.5,1,2,4
gamma_sweep:
	$(PYTHON) -m experiments.gamma_sweep --preset=$(PRESET) --dataset=$(firstword $(DATASET_LIST)) \
	  --seeds=$(call join_commas,$(SEED_LIST)) --gammas=$(GAMMAS) --verbose=2

# Fig. 2 is MNIST only (as in the paper), whatever DATASETS says.
fig2:
	$(call need_results,DATASETS=mnist ALL_METHODS="$(FIG2_METHODS)")
	$(PYTHON) -m experiments.convergence --preset=$(PRESET) --dataset=mnist --seeds=$(call join_commas,$(SEED_LIST))

table3:
	$(PYTHON) -m experiments.arch_tables --dataset=mnist

table4:
	$(PYTHON) -m experiments.arch_tables --dataset=cifar10

# Every run once (Table 2's methods on DATASETS, plus Fig. 2's on MNIST), then every output.
all:
	$(call need_results,DATASETS="$(DATASET_LIST)" ALL_METHODS="$(TABLE2_METHODS)")
	$(call need_results,DATASETS=mnist ALL_METHODS="$(if $(filter mnist,$(DATASET_LIST)),gandef_v1,$(FIG2_METHODS))")
	$(MAKE) table2 fig2 fig3 fig4 roc table3 table4 PRESET=$(PRESET) DATASETS="$(DATASET_LIST)" SEEDS="$(SEED_LIST)" RESULTS_DONE=1

# Every target end to end at the smoke preset, MNIST only (CIFAR-10's allCNN is far
# slower on a CPU); Table 4 needs no training, so it is included.
smoke:
	$(MAKE) all PRESET=smoke DATASETS=mnist SEEDS="$(SEED_LIST)"

.PHONY: bench
# Speed as ratios against baselines measured in the same process (README, Performance).
bench:
	$(PYTHON) -m experiments.bench --out=figures/bench.json

# Does every paper config learn at all? A few hundred steps each on real data (bfloat16 on
# a CPU that has it): figures/$(PRESET)/probe.json.  make probe PRESET=paper
PROBE_STEPS ?= 200
.PHONY: probe
probe:
	$(PYTHON) -m experiments.probe --paper_check --preset=$(PRESET) --steps=$(PROBE_STEPS) \
	  --datasets=$(call join_commas,$(DATASET_LIST)) --out=figures/$(PRESET)/probe.json

# For a session lent a GPU (at most 8 minutes): bfloat16/float32 rows on the device, 100
# paper-preset training steps per method and dataset, projected paper-run times.
.PHONY: gpu-check
gpu-check:
	$(PYTHON) -m experiments.gpu_check --out=figures/bench-gpu.json
