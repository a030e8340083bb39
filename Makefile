# Set-up is idempotent: the venv is made once, the package re-installed only when setup.py
# changes, and Debian packages installed only when missing.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYS_PKGS := sctk espeak-ng flac sox
export MPLCONFIGDIR ?= $(CURDIR)/.venv/mplconfig
export PYTHONUNBUFFERED := 1

.PHONY: setup sysdeps test demo bench clean-demo

setup: sysdeps $(STAMP)

sysdeps:
	@missing=$$(for p in $(SYS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing Debian packages:" $$missing; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

# pip is kept at the venv's own version: pip >= 25 refuses one of espnet's dependencies (ci_sdr).
$(STAMP): setup.py
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q -e '.[dev]'
	mkdir -p $(MPLCONFIGDIR)
	touch $@

test: setup
	$(PYTHON) -m pytest -q tests

bench: setup
	$(PYTHON) -m bench.run_all

demo: setup
	$(PYTHON) -m espnet_pathways.demo
