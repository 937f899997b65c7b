# fdmon — build, test and install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
PYTHON ?= python3
VENV ?= .venv

.PHONY: all build static run test check unit interop venv golden install uninstall clean fuzz \
	bench bench-build bench-smoke

all: build

build:
	$(CARGO) build --release

# A fully static fdmon in target/static/fdmon: musl when that target is installed, otherwise
# glibc with +crt-static (non-PIE). A static build resolves only numeric addresses and
# localhost (no NSS at run time), so it runs in an empty chroot or an initramfs.
STATIC_DIR = target/static-build
static:
	@if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then \
		t=x86_64-unknown-linux-musl; flags=""; \
	else \
		t=$$(rustc -vV | sed -n 's/^host: //p'); flags="-C target-feature=+crt-static -C relocation-model=static"; \
	fi; \
	echo "static build for $$t"; \
	RUSTFLAGS="$$flags" $(CARGO) build --release --quiet --target $$t --target-dir $(STATIC_DIR) && \
	mkdir -p target/static && cp $(STATIC_DIR)/$$t/release/fdmon target/static/fdmon.tmp && \
	mv target/static/fdmon.tmp target/static/fdmon

# Serve a QMP monitor on ./fdmon.sock (the README's first command).
run: build
	./target/release/fdmon -chardev socket,path=fdmon.sock,server=on,wait=off,id=mon -mon chardev=mon,mode=control

# Unit and integration tests (spawn the real binary), then interop with python's qemu.qmp,
# then a check that the suite left nothing behind: it runs with a TMPDIR of its own, which
# must be empty afterwards (tests name their scratch dirs fdmon-test-*), no process started
# under it (found by that TMPDIR in its environment) may still run (they are killed and
# listed), and no file (a socket or anything else) may have appeared in the checkout.
# target/ and .venv/ are build caches and are not checked.
CHECKOUT_FILES = find . -path ./target -prune -o -path ./.venv -prune -o -path ./.git -prune -o -print
test:
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/fdmon-make-test.XXXXXX") || exit 1; \
	$(CHECKOUT_FILES) | sort >"$$tmp.before"; \
	status=0; TMPDIR="$$tmp" $(MAKE) --no-print-directory unit interop || status=$$?; \
	$(CHECKOUT_FILES) | sort >"$$tmp.after"; \
	new=$$(comm -13 "$$tmp.before" "$$tmp.after"); \
	left=$$(ls -A "$$tmp"); \
	procs=$$(for e in /proc/[0-9]*/environ; do \
		tr '\0' '\n' 2>/dev/null <"$$e" | grep -q "^TMPDIR=$$tmp" || continue; \
		p=$${e#/proc/}; p=$${p%/environ}; echo "$$p $$(tr '\0' ' ' 2>/dev/null </proc/$$p/cmdline)"; \
		kill -KILL "$$p" 2>/dev/null; done); \
	rm -rf "$$tmp" "$$tmp.before" "$$tmp.after"; \
	if [ -n "$$new$$left$$procs" ]; then \
		echo "make test left things behind:"; \
		[ -z "$$new" ] || printf 'in the checkout:\n%s\n' "$$new"; \
		[ -z "$$left" ] || printf 'in its TMPDIR:\n%s\n' "$$left"; \
		[ -z "$$procs" ] || printf 'processes still running:\n%s\n' "$$procs"; \
		exit 1; \
	fi; \
	exit $$status

check: test

unit:
	$(CARGO) test --all-targets --no-fail-fast

# Re-record QEMU 7.2's golden transcripts (tests/golden/) from the installed QEMU; refuses any
# other version. Every differential case compares fdmon against them on every run.
golden:
	@qemu-system-x86_64 -version | grep -q '^QEMU emulator version 7\.2\.' || \
		{ echo "make golden: needs QEMU 7.2 (qemu-system-x86_64 -version)" >&2; exit 1; }
	FDMON_RECORD_GOLDEN=1 $(CARGO) test --tests --no-fail-fast

$(VENV)/.ok:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'qemu.qmp==0.0.6' || \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check qemu.qmp
	touch $@

venv: $(VENV)/.ok

interop: venv
	$(CARGO) build
	PYTHONDONTWRITEBYTECODE=1 FDMON=$(CURDIR)/target/debug/fdmon $(VENV)/bin/python -m unittest discover -s tests/interop -p 'test_*.py' -v

# Benchmarks (not part of `make test`, which runs only the smoke run in tests/bench_smoke.rs):
# bench/runner measures every figure side by side in interleaved rounds against bench/floor (and
# QEMU 7.2 when installed) and writes BENCHMARKS.md, keeping its hand-written section. Needs
# valgrind and strace (apt-get install -y valgrind strace); about 8 minutes on 2 cores.
# `fdmon-bench --only FAMILY` (startup, memory, request path, idle, size, tools) runs one family.
# `make bench-smoke` runs every figure that needs no tool once with tiny counts and writes nothing.
BENCH_DIR = target/bench
BENCH_CARGO = $(CARGO) build --release --quiet --target-dir $(BENCH_DIR) --manifest-path
BENCH_RUN = $(BENCH_DIR)/release/fdmon-bench --fdmon target/release/fdmon --floor $(BENCH_DIR)/release/floor
bench-build:
	$(BENCH_CARGO) bench/floor/Cargo.toml
	$(BENCH_CARGO) bench/runner/Cargo.toml

bench: build bench-build
	$(BENCH_RUN) --out BENCHMARKS.md

bench-smoke: build bench-build
	$(BENCH_RUN) --smoke

# Fuzz every target in fuzz/ (needs `cargo install cargo-fuzz`); not part of `make test`.
# SECS seconds per target (default 600), TARGETS to pick some (json hmp kv qmp).
fuzz:
	./fuzz/run-all.sh

# FDMON_BIN installs another build (tests install the debug binary into a scratch DESTDIR).
FDMON_BIN ?= target/release/fdmon
install: $(if $(filter target/release/fdmon,$(FDMON_BIN)),build)
	install -d $(BINDIR) $(MANDIR)
	install -m 0755 $(FDMON_BIN) $(BINDIR)/fdmon
	install -m 0644 doc/fdmon.1 $(MANDIR)/fdmon.1

uninstall:
	rm -f $(BINDIR)/fdmon $(MANDIR)/fdmon.1

clean:
	$(CARGO) clean
	rm -rf $(VENV)
