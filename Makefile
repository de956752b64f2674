# mcu-anomaly: `make demo` (main job on built-in data) and `make test` set up everything first.
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Compilers the generated C is checked with (host gcc/clang, AVR, Cortex-M, RISC-V), the
# Arduino core, and the simulators the firmware runs in (simavr, qemu).
APT_PACKAGES := gcc g++ clang python3-venv gcc-avr avr-libc binutils-avr arduino-core-avr \
	avrdude simavr libsimavr-dev gcc-arm-none-eabi libnewlib-arm-none-eabi \
	gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-arm qemu-system-misc \
	chromium

.PHONY: setup system demo test clean

setup: system $(BIN)/.installed

system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,firmware,autoencoder,peers,fleet]'
	touch $@

demo: setup
	$(BIN)/mcu-anomaly demo --out build

test: setup
	MCUA_TESTS_STRICT=1 $(BIN)/pytest -q -n 2 --dist loadgroup --durations=30

clean:
	rm -rf build $(VENV) *.egg-info
