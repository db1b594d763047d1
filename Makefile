# unlearnbench developer targets. `make help` lists them.
PY ?= .venv/bin/python
RUN = HYDRA_FULL_ERROR=1 $(PY) -m unlearnbench
# torchvision datasets (docs/data.md): $UNLEARNBENCH_DATA, else ./data
DATA ?= $(or $(UNLEARNBENCH_DATA),data)

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

SUDO ?= $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
test-slurm: ## start a one-node SLURM on this machine (Debian: installs slurm-wlm, munge), run the sweeps on it
	$(SUDO) scripts/dev/slurm_local.sh start
	$(PY) -m pytest -q -m slurm

slurm-stop: ## stop the one-node SLURM that test-slurm started
	$(SUDO) scripts/dev/slurm_local.sh stop

run: ## the default job: digits, mlp, random 10% forget, finetune
	$(RUN)

smoke: ## every stage in seconds (debug=smoke)
	$(RUN) debug=smoke

fashion: ## Fashion-MNIST + mlp, full pipeline on the real data in $(DATA)
	$(RUN) dataset=fashion_mnist data_root=$(DATA) model=mlp

sweep-example: ## a 2-method x 2-seed sweep on digits, then its table
	$(RUN) -m method=finetune,gradient_ascent seed=0,1
	$(PY) -m unlearnbench.reports outputs/runs

bench: ## time engine vs a textbook loop, every stage, a model bank, MIA scoring (BENCH_ARGS=...)
	$(PY) scripts/bench.py $(BENCH_ARGS)

compare: ## table of every run under outputs/ (Markdown)
	$(PY) -m unlearnbench.reports outputs/runs

cache-list: ## entries of the model cache under outputs/cache (stage, key, size, age)
	$(PY) -m unlearnbench.cache_cli list --cache-dir outputs/cache

cache-du: ## disk use of the model cache per stage
	$(PY) -m unlearnbench.cache_cli du --cache-dir outputs/cache

# ---- paper tables: each runs its versioned presets as one sweep, then renders the table.
# Each swept method runs with its paper's recipe (conf/recipe/<table>/<method>.yaml); the
# published reference numbers, where a paper has any we could read, are conf/table/<table>.expect.csv
# and the target checks the table against them (docs/reproducing.md).
reference_check = @if [ -f conf/table/$(1).expect.csv ]; then $(COMPARE) $(2) --expect conf/table/$(1).expect.csv; \
	else echo "table $(1): no published reference numbers to check against (conf/table/$(1).yaml says why)"; fi
# CIFAR/SVHN need the datasets under $(DATA) (downloaded there when online).
SEEDS ?= 0,1,2
COMPARE = $(PY) -m unlearnbench.reports
TABLES = outputs/tables
SHARED = cache_dir=outputs/cache data_root=$(DATA) progress=false

FASHION = dataset=fashion_mnist model=mlp table=fashion forget=random,class_fraction
FASHION_METHODS = original,retrain,finetune,gradient_ascent,negrad_plus,random_label,l1_sparse,salun,scrub,ssd,topk,randomk,del,lightweight,nabla_tau
FASHION_METRICS = forget_acc,retain_acc,test_acc,mia_loss_auc,acc_avg_gap
FASHION_EXPECT = conf/table/fashion.expect.csv

table-fashion: ## every method on real Fashion-MNIST (mlp; random 10% and classes {2,5}), 3 seeds: docs/methods.md's table
	$(RUN) -m $(FASHION) seed=$(SEEDS) output_root=$(TABLES)/fashion $(SHARED) method=$(FASHION_METHODS)
	$(COMPARE) $(TABLES)/fashion --rows method --cols forget --metrics $(FASHION_METRICS),rte_s,speedup_vs_retrain --no-ci --out $(TABLES)/fashion.md
	$(PY) scripts/table_notes.py fashion >> $(TABLES)/fashion.md

fashion-expect: ## rewrite conf/table/fashion.expect.csv from the 3-seed runs of make table-fashion (after a method change that moves them)
	$(PY) scripts/expect_from_runs.py $(TABLES)/fashion --rows method --cols forget --metrics $(FASHION_METRICS) --out $(FASHION_EXPECT)

# The check's slice is whatever conf/table/fashion.expect.csv pins: its methods and forget sets, seed 0.
CHECK_METHODS = $(shell $(PY) scripts/expect_keys.py $(FASHION_EXPECT) method)
CHECK_FORGETS = $(shell $(PY) scripts/expect_keys.py $(FASHION_EXPECT) forget)

check-fashion: ## re-run seed 0 of the Fashion table's pinned cells from scratch (1 thread) and check them against conf/table/fashion.expect.csv
	rm -rf outputs/check/fashion
	$(RUN) -m dataset=fashion_mnist model=mlp table=fashion forget=$(CHECK_FORGETS) seed=0 threads=1 output_root=outputs/check/fashion \
	  data_root=$(DATA) progress=false method=$(CHECK_METHODS)
	$(COMPARE) outputs/check/fashion --rows method --cols forget --metrics $(FASHION_METRICS) --no-ci --expect $(FASHION_EXPECT)

table-peers: ## the peers' baselines (bad_teacher, unsir, scar, sfron, eu_k, cf_k) on Fashion-MNIST (mlp; random 10% and class 0), with js_to_oracle, zrf, relearn_epochs
	$(RUN) -m dataset=fashion_mnist model=mlp forget=random,class seed=$(SEEDS) output_root=$(TABLES)/peers $(SHARED) \
	  method=original,retrain,bad_teacher,unsir,scar,sfron,eu_k,cf_k 'eval.evaluators=[accuracy,oracle_gap,js_to_oracle,zrf,relearn_epochs,efficiency]'
	$(COMPARE) $(TABLES)/peers --rows method --cols forget --metrics forget_acc,retain_acc,test_acc,js_to_oracle_forget,zrf,relearn_epochs,rte_s --no-ci --out $(TABLES)/peers.md

table-del: ## DEL (TMLR'25): CIFAR-10 IID and non-IID {2,5}, gaps to the oracle (needs CIFAR-10)
	$(RUN) -m experiment=del_cifar10_iid,del_cifar10_noniid eval=del seed=$(SEEDS) output_root=$(TABLES)/del $(SHARED) \
	  method=finetune,negrad_plus,l1_sparse,random_label,salun,del
	$(COMPARE) $(TABLES)/del --rows method --cols experiment --metrics forget_acc_gap,mia_svc_efficacy_gap,test_acc_gap,avg_gap --out $(TABLES)/del.md
	$(PY) scripts/table_notes.py del >> $(TABLES)/del.md
	$(call reference_check,del,$(TABLES)/del --rows method --cols experiment)

table-nabla-tau: ## ∇τ (Trippa et al.): CIFAR-10 at 3/15/30 % random forget sets (needs CIFAR-10)
	$(RUN) -m experiment=nabla_tau_cifar10,nabla_tau_cifar10_15,nabla_tau_cifar10_30 seed=$(SEEDS) output_root=$(TABLES)/nabla_tau $(SHARED) \
	  method=original,retrain,finetune,random_label,scrub,ssd,nabla_tau
	$(COMPARE) $(TABLES)/nabla_tau --rows method --cols experiment --metrics forget_acc,test_acc,mia_loss_lr_acc,tow --out $(TABLES)/nabla_tau.md
	$(PY) scripts/table_notes.py nabla_tau >> $(TABLES)/nabla_tau.md
	$(call reference_check,nabla_tau,$(TABLES)/nabla_tau --rows method --cols experiment)

table-salun: ## SalUn (ICLR'24) Table 1 setting: CIFAR-10 10% random and one class, official per-method recipes (needs CIFAR-10)
	$(RUN) -m experiment=salun_cifar10_random10,salun_cifar10_class seed=$(SEEDS) output_root=$(TABLES)/salun $(SHARED) \
	  method=retrain,finetune,gradient_ascent,random_label,l1_sparse,salun
	$(COMPARE) $(TABLES)/salun --rows method --cols experiment --metrics forget_acc,retain_acc,test_acc,mia_svc_efficacy,avg_gap --out $(TABLES)/salun.md
	$(PY) scripts/table_notes.py salun >> $(TABLES)/salun.md
	$(call reference_check,salun,$(TABLES)/salun --rows method --cols experiment)

table-zuo: ## Zuo et al. (reconstruction): Top-K vs Random-k on CIFAR-10 with FR/MRR and SPD-GAN (needs CIFAR-10)
	$(RUN) -m experiment=zuo_cifar10_topk eval=zuo eval.params.spd.spd_mode=evaluate,inject seed=$(SEEDS) output_root=$(TABLES)/zuo $(SHARED) \
	  method=original,retrain,finetune,topk,randomk
	$(COMPARE) $(TABLES)/zuo --rows method --cols eval.params.spd.spd_mode \
	  --metrics forgetting_rate,memory_retention_rate,spd_unlearning_degree_norm,speedup_vs_retrain --out $(TABLES)/zuo.md
	$(PY) scripts/table_notes.py zuo >> $(TABLES)/zuo.md

table-lightweight: ## Lightweight (reconstruction): speed-up over retraining on Fashion-MNIST (offline)
	$(RUN) -m experiment=lightweight_fashion_mnist eval=lightweight seed=$(SEEDS) output_root=$(TABLES)/lightweight $(SHARED) method=retrain,finetune,lightweight
	$(COMPARE) $(TABLES)/lightweight --rows method --metrics forget_acc,test_acc,mia_loss_auc,method.epochs,speedup_vs_retrain --out $(TABLES)/lightweight.md

# ---- tuned baselines: every method tuned against the oracle on seed $(TUNE_SEED), reported on other seeds.
TUNE = HYDRA_FULL_ERROR=1 $(PY) -m unlearnbench.tuning.cli
TUNE_METHODS ?= finetune gradient_ascent negrad_plus random_label l1_sparse salun scrub ssd bad_teacher unsir scar sfron eu_k cf_k topk randomk del lightweight nabla_tau
TRIALS ?= 20
TUNE_SEED ?= 0
EVAL_SEEDS ?= 1,2,3
TUNED = $(TABLES)/fashion_tuned
# table=fashion: the Fashion table's per-method recipes (SCRUB's clipped max-steps), so tuned and
# untuned rows run what `make table-fashion` runs.
FMNIST = dataset=fashion_mnist model=mlp table=fashion forget=random $(SHARED)
comma := ,
space := $(subst ,, )

# One method failing (every trial diverged, a tuned value diverging on another seed) does not stop
# the others: it is listed in $(TUNED)/failed.txt, printed at the end, and its row is missing.
tune-fashion: ## tune TUNE_METHODS on Fashion-MNIST seed 0 (TRIALS=20 each, val_avg_gap), then untuned vs tuned (and original) over seeds 1-3
	@rm -f $(TUNED)/failed.txt; mkdir -p $(TUNED)
	for m in $(TUNE_METHODS); do \
	  $(TUNE) method=$$m seed=$(TUNE_SEED) $(FMNIST) output_root=$(TUNED)/tuning --trials $(TRIALS) \
	    --out $(TUNED)/tuned/$$m.yaml || echo "$$m: tuning failed" >> $(TUNED)/failed.txt; done
	for m in original $(TUNE_METHODS); do \
	  $(RUN) -m method=$$m seed=$(EVAL_SEEDS) $(FMNIST) output_root=$(TUNED)/eval \
	    || echo "$$m: untuned runs failed" >> $(TUNED)/failed.txt; done
	for m in $(TUNE_METHODS); do [ -f $(TUNED)/tuned/$$m.yaml ] || continue; \
	  $(RUN) -m method=$$m +tuned=$(TUNED)/tuned/$$m.yaml seed=$(EVAL_SEEDS) $(FMNIST) output_root=$(TUNED)/eval \
	    || echo "$$m: tuned runs failed" >> $(TUNED)/failed.txt; done
	$(COMPARE) $(TUNED)/eval --rows method,tuned --metrics forget_acc,retain_acc,test_acc,mia_loss_auc,acc_avg_gap,val_avg_gap \
	  --reference oracle --no-ci --out $(TABLES)/fashion_tuned.md
	@if [ -s $(TUNED)/failed.txt ]; then echo "tune-fashion: rows missing from the table:"; cat $(TUNED)/failed.txt; fi

# ---- per-example audit: a seed population on the audit testbed, then unlearnbench-audit.
AUDIT_SEEDS ?= 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
AUDIT = outputs/audit
# One torch thread per job, two jobs: small MLPs on a busy 2-core CPU otherwise lose most
# of their time in thread barriers (measured: 4 ms/step alone, 30 ms at 1 thread, 520 ms at 2
# threads with the cores shared).

audit-fashion: ## U-LiRA, ε-score and KLOM over 16 seeds on the Fashion-MNIST audit testbed (docs/audit.md)
	$(RUN) -m hydra/launcher=parallel hydra.launcher.n_jobs=2 threads=1 experiment=audit_fashion \
	  seed=$(AUDIT_SEEDS) output_root=$(AUDIT) $(SHARED) method=original,retrain,finetune,nabla_tau,del,topk
	$(PY) -m unlearnbench.reports.audit $(AUDIT)/runs --out $(AUDIT)/audit.md --csv $(AUDIT)/audit.csv --plot $(AUDIT)/audit.png

recipes: ## docs/recipes.md: every paper preset x pinned baseline, the composed recipe beside its official-code source
	$(PY) scripts/recipe_table.py > docs/recipes.md

clean: ## remove run dirs and the model cache under outputs/
	rm -rf outputs/runs outputs/cache outputs/multirun

.PHONY: recipes audit-fashion test-slurm slurm-stop tune-fashion table-fashion table-peers fashion-expect check-fashion table-salun table-del table-nabla-tau table-zuo table-lightweight help install test test-slow test-gpu run smoke fashion sweep-example bench compare cache-list cache-du clean
