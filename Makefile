# gandef_tf: every table and figure of the paper is one target; `make help` lists them.
#   make install; make test; make table2      (renders the committed quick-preset runs)
PYTHON ?= python
PRESET ?= quick
DATASETS ?= all
SEEDS ?= all
METHODS ?= vanilla pure_pgd mix_pgd logit_pairing gandef
TRAIN ?=
RUN_FLAGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-all
help:
	@echo "gandef_tf. Default: PRESET=quick, the CPU-scale runs committed in results/quick/;"
	@echo "rendering reads results/ only and trains nothing unless TRAIN=1."
	@echo ""
	@echo "Targets (the variables each one reads):"
	@echo "  install      pip install -e \".[dev,eval]\" into the current Python (PYTHON)"
	@echo "  test         the test suite, two pytest-xdist workers: about 4.5-5 minutes on 2 idle CPU cores (PYTHON)"
	@echo "  test-all     the test suite and the benchmark subprocesses (marked bench) (PYTHON)"
	@echo "  table2       Table 2 into figures/PRESET/table2.{md,csv,tex,json} (PRESET DATASETS SEEDS TRAIN RUN_FLAGS)"
	@echo "  fig2         Fig. 2, convergence on MNIST, figures/PRESET/fig2.* (PRESET SEEDS TRAIN RUN_FLAGS)"
	@echo "  fig3         Fig. 3, Table 2 as bars, figures/PRESET/fig3.* (PRESET DATASETS SEEDS TRAIN RUN_FLAGS)"
	@echo "  fig4         Fig. 4, accuracy vs ratio of adversarial examples, figures/PRESET/fig4.* (PRESET DATASETS SEEDS TRAIN RUN_FLAGS)"
	@echo "  roc          beyond the paper: ROC of GanDef's discriminator, figures/PRESET/roc.* (PRESET DATASETS SEEDS TRAIN RUN_FLAGS)"
	@echo "  table3       Table 3, LeNet's layers, figures/table3.* (no variables; trains nothing)"
	@echo "  table4       Table 4, allCNN's layers, figures/table4.* (no variables; trains nothing)"
	@echo "  all          every output above once (PRESET DATASETS SEEDS TRAIN RUN_FLAGS)"
	@echo "  results      train and evaluate the runs that lack results; priced first (PRESET DATASETS SEEDS METHODS RUN_FLAGS TRAIN)"
	@echo "  plan         every run's work and estimated time on this device, trains nothing (PRESET DATASETS SEEDS METHODS RUN_FLAGS)"
	@echo "  run.D.M.S    one run, e.g. run.mnist.gandef.0: experiments.evaluate, priced first (PRESET RUN_FLAGS TRAIN)"
	@echo "  reproduce.D.M.S  retrain a committed run whose model is gone, check it is the same model (PRESET RUN_FLAGS TRAIN)"
	@echo "  gamma_sweep  beyond the paper: GanDef for several gamma, hours on a CPU (PRESET DATASETS SEEDS GAMMAS FORMS TRAIN)"
	@echo "  smoke        every target at the smoke preset on MNIST, trains in seconds (SEEDS)"
	@echo "  bench        speed ratios into figures/bench.{json,md} (BENCH_OUT), about 5 minutes on an AMX host (PYTHON)"
	@echo "  bench-onednn oneDNN's CPU kernels vs Eigen's, pairs side by side, figures/bench_onednn.json, ~6 min (PYTHON)"
	@echo "  probe-epochs issue 36's dropout x schedule probes, two queues, one per core: days of CPU (PYTHON)"
	@echo "  probe-report the probes' rows as figures/quick/dropout_schedule.{md,json,png}, trains nothing (PYTHON)"
	@echo "  probe        does each paper config learn? a few hundred steps each, figures/PRESET/probe.json (PRESET DATASETS PROBE_STEPS)"
	@echo "  gpu-check    for a session lent a GPU: bench rows + paper step times into figures/bench-gpu.json, < 8 min (PYTHON)"
	@echo ""
	@echo "Variables:"
	@echo "  PRESET=quick     quick (CPU scale, committed), paper (the paper's scale: days on a CPU), smoke (tests)"
	@echo "  DATASETS=all     mnist, cifar10, comma or space separated; all: rendering shows the datasets"
	@echo "                   with results (and names the missing ones), results makes both"
	@echo "  SEEDS=all        e.g. 0,1,2; all: the seeds with results for PRESET (0 when none)"
	@echo "  METHODS=...      results/plan: the Table 2 methods ($(METHODS)); gandef_v1 is added"
	@echo "  RUN_FLAGS=       flags for each run's evaluate command, e.g. --eval_attacks=fgsm,pgd1 --threads=1"
	@echo "  TRAIN=1          render targets: make the missing runs first; results: start work estimated"
	@echo "                   over 30 minutes on this device, or retrain over saved results"

install:
	$(PYTHON) -m pip install -e ".[dev,eval]"

# Two workers, each file's tests on one of them (module fixtures are built once):
# 4.5-5 minutes on 2 idle cores (docs/testing.md, Speed).
test:
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

test-all:
	$(PYTHON) -m pytest -q -n 2 --dist loadfile -m ""

ALL_METHODS = $(METHODS) gandef_v1
comma = ,
space := $(subst ,, )
join_commas = $(subst $(space),$(comma),$(strip $(1)))
TRAIN_ON = $(filter-out 0 no false,$(TRAIN))
TRAIN_FLAG = $(if $(TRAIN_ON),--train)
SELECTION = --preset=$(PRESET) --datasets=$(call join_commas,$(DATASETS)) \
	--seeds=$(call join_commas,$(SEEDS))

# Train (or resume, or extend) and evaluate the runs that lack results. experiments.plan
# reads results/ and runs/ first: it names the runs that need work, or refuses in one line
# with its price (work over 30 minutes, or a retrain over saved results) unless TRAIN=1.
# One target per run, so independent runs go in parallel with `make -j N results`.
.PHONY: results plan
results:
	@targets=$$($(PYTHON) -m experiments.plan $(SELECTION) \
	  --methods=$(call join_commas,$(ALL_METHODS)) $(RUN_FLAGS) $(TRAIN_FLAG)) || exit 2; \
	if [ -n "$$targets" ]; then $(MAKE) --no-print-directory $$targets; \
	else echo "[$(PRESET)] every run asked for is complete in results/$(PRESET)/"; fi

plan:
	$(PYTHON) -m experiments.plan $(SELECTION) --methods=$(call join_commas,$(ALL_METHODS)) \
	  $(RUN_FLAGS) --list

run_word = $(word $(2),$(subst ., ,$(1)))
run.%:
	$(PYTHON) -m experiments.evaluate --preset=$(PRESET) --dataset=$(call run_word,$*,1) \
	  --method=$(call run_word,$*,2) --seed=$(call run_word,$*,3) --verbose=2 $(RUN_FLAGS) \
	  $(TRAIN_FLAG)

# A fresh clone has the results but not the models: this retrains one and checks it against
# the committed history bit for bit, so that run.D.M.S may then add attacks to its results.
reproduce.%:
	$(PYTHON) -m experiments.reproduce --preset=$(PRESET) --dataset=$(call run_word,$*,1) \
	  --method=$(call run_word,$*,2) --seed=$(call run_word,$*,3) --verbose=2 $(RUN_FLAGS) \
	  $(TRAIN_FLAG)

# --- Tables and figures: rendered from results/ into figures/$(PRESET)/ (Tables 3-4,
# being preset-free, into figures/). With TRAIN=1 the runs they read are made first.
#   make table2 PRESET=quick DATASETS=mnist SEEDS=0,1     (comma or space separated)
# The runs each output reads; ALL_METHODS is overridden so `results` makes only these.
TABLE2_METHODS = vanilla pure_pgd mix_pgd logit_pairing gandef
FIG2_METHODS = pure_pgd mix_pgd logit_pairing gandef gandef_v1
FIG4_METHODS = pure_pgd mix_pgd logit_pairing gandef

# RESULTS_DONE=1 skips the `results` step (set by `all`, which runs it once for every output).
need_results = $(if $(and $(TRAIN_ON),$(if $(RESULTS_DONE),,1)),$(MAKE) results PRESET=$(PRESET) \
	SEEDS="$(SEEDS)" $(1))

.PHONY: table2 fig2 fig3 fig4 roc gamma_sweep table3 table4 all smoke
table2 fig3:
	$(call need_results,DATASETS="$(DATASETS)" ALL_METHODS="$(TABLE2_METHODS)")
	$(PYTHON) -m experiments.$@ $(SELECTION)

fig4:
	$(call need_results,DATASETS="$(DATASETS)" ALL_METHODS="$(FIG4_METHODS)")
	$(PYTHON) -m experiments.fig4 $(SELECTION)

# Beyond the paper: the discriminator's ROC per attack, from GanDef's saved predictions.
roc:
	$(call need_results,DATASETS="$(DATASETS)" ALL_METHODS=gandef)
	$(PYTHON) -m experiments.roc $(SELECTION)

# Beyond the paper: GanDef for several gamma (one run each; hours at PRESET=quick on a
# CPU, so not part of `all`).  make gamma_sweep PRESET=quick GAMMAS=0,0.5,1,2,4 TRAIN=1
# FORMS=equation,authors_code sweeps both of GanDef's loss forms (default: the preset's).
GAMMAS ?= 0,0.5,1,2,4
GAMMA_DATASET = $(firstword $(filter-out all,$(subst $(comma), ,$(DATASETS))) mnist)
GAMMA_SEEDS = $(if $(filter all,$(SEEDS)),0,$(call join_commas,$(SEEDS)))
gamma_sweep:
	$(PYTHON) -m experiments.gamma_sweep --preset=$(PRESET) --dataset=$(GAMMA_DATASET) \
	  --seeds=$(GAMMA_SEEDS) --gammas=$(GAMMAS) --verbose=2 $(TRAIN_FLAG) \
	  $(if $(FORMS),--forms=$(FORMS))

# Fig. 2 is MNIST only (as in the paper), whatever DATASETS says.
fig2:
	$(call need_results,DATASETS=mnist ALL_METHODS="$(FIG2_METHODS)")
	$(PYTHON) -m experiments.convergence --preset=$(PRESET) --dataset=mnist \
	  --seeds=$(call join_commas,$(SEEDS))

table3:
	$(PYTHON) -m experiments.arch_tables --dataset=mnist

table4:
	$(PYTHON) -m experiments.arch_tables --dataset=cifar10

# Every run once (Table 2's methods on DATASETS, plus Fig. 2's on MNIST), then every output.
all:
	$(call need_results,DATASETS="$(DATASETS)" ALL_METHODS="$(TABLE2_METHODS)")
	$(call need_results,DATASETS=mnist ALL_METHODS="$(FIG2_METHODS)")
	$(MAKE) table2 fig2 fig3 fig4 roc table3 table4 PRESET=$(PRESET) DATASETS="$(DATASETS)" \
	  SEEDS="$(SEEDS)" RESULTS_DONE=1

# Every target end to end at the smoke preset, MNIST only (CIFAR-10's allCNN is far
# slower on a CPU); Table 4 needs no training, so it is included.
smoke:
	$(MAKE) all PRESET=smoke DATASETS=mnist SEEDS="$(if $(filter all,$(SEEDS)),0,$(SEEDS))" TRAIN=1

.PHONY: bench
# Speed as ratios against baselines measured in the same process (docs/performance.md).
# Another kind of host keeps its own record beside the others (pricing reads every
# figures/bench*.json, its own device's first): make bench BENCH_OUT=figures/bench-amd-epyc.json
BENCH_OUT ?= figures/bench.json
bench:
	$(PYTHON) -m experiments.bench --out=$(BENCH_OUT)

.PHONY: bench-onednn
# The commands turn TensorFlow's oneDNN kernels on (experiments/__init__.py); what that buys
# on this host, as ratios of pairs run side by side (the switch is per process).
bench-onednn:
	$(PYTHON) -m experiments.onednn_bench --out=figures/bench_onednn.json

# Issue 36's dropout x schedule probes (docs/deviations.md): two queues, one per core, one
# thread each; rows into results/quick/cifar10/tuning/dropout_schedule.jsonl. Resumable: the
# same command continues them (checkpoints under GANDEF_RUNS_DIR/probes). Days of CPU.
.PHONY: probe-epochs
probe-epochs:
	$(PYTHON) -m experiments.probe_queues --queue=0 & \
	$(PYTHON) -m experiments.probe_queues --queue=1; wait

# Their rows as a table and a figure, finding 2's gap split into parts; trains nothing.
.PHONY: probe-report
probe-report:
	$(PYTHON) -m experiments.probe_report

# Does every paper config learn at all? A few hundred steps each on real data (bfloat16 on
# a CPU that has it): figures/$(PRESET)/probe.json.  make probe PRESET=paper
PROBE_STEPS ?= 200
.PHONY: probe
probe:
	$(PYTHON) -m experiments.probe --paper_check --preset=$(PRESET) --steps=$(PROBE_STEPS) \
	  --datasets=$(call join_commas,$(if $(filter all,$(DATASETS)),mnist cifar10,$(DATASETS))) \
	  --out=figures/$(PRESET)/probe.json

# For a session lent a GPU (at most 8 minutes): bfloat16/float32 rows on the device, 100
# paper-preset training steps per method and dataset, projected paper-run times.
.PHONY: gpu-check
gpu-check:
	$(PYTHON) -m experiments.gpu_check --out=figures/bench-gpu.json
