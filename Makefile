# The two set-up commands of the README:
#   make demo   installs the project into .venv and runs the whole pipeline (dvc repro)
#   make test   installs the test dependencies and runs the test suite
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1

.PHONY: demo demo-dpo demo-grpo test install install-dev clean

$(BIN)/toolkit: pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $@

$(VENV)/.dev-installed: $(BIN)/toolkit
	bash scripts/install.sh $(VENV) dev
	touch $@

install: $(BIN)/toolkit
install-dev: $(VENV)/.dev-installed

demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

demo-dpo: install   # after `make demo`: release the SFT adapter, then DPO on it as a DVC experiment
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo_sft_dpo.sh

demo-grpo: install  # after `make demo`: release the SFT adapter, then GRPO on it as a DVC experiment
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo_sft_grpo.sh

test: install-dev
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf artifacts reports .cache/train .dvc/cache .dvc/tmp dvc.lock   # metrics/, plots/, dvclive/ are committed
