# fdmon — build, test and install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
PYTHON ?= python3
VENV ?= .venv

.PHONY: all build run test check unit interop venv install uninstall clean fuzz

all: build

build:
	$(CARGO) build --release

# Serve a QMP monitor on ./fdmon.sock (the README's first command).
run: build
	./target/release/fdmon -chardev socket,path=fdmon.sock,server=on,wait=off,id=mon -mon chardev=mon,mode=control

# Unit and integration tests (spawn the real binary), then interop with python's qemu.qmp.
test: unit interop

check: test

unit:
	$(CARGO) test --all-targets --no-fail-fast

$(VENV)/.ok:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'qemu.qmp==0.0.6' || \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check qemu.qmp
	touch $@

venv: $(VENV)/.ok

interop: venv
	$(CARGO) build
	FDMON=$(CURDIR)/target/debug/fdmon $(VENV)/bin/python -m unittest discover -s tests/interop -p 'test_*.py' -v

# Fuzz every target in fuzz/ (needs `cargo install cargo-fuzz`); not part of `make test`.
# SECS seconds per target (default 600), TARGETS to pick some (json hmp kv qmp).
fuzz:
	./fuzz/run-all.sh

install: build
	install -d $(BINDIR) $(MANDIR)
	install -m 0755 target/release/fdmon $(BINDIR)/fdmon
	install -m 0644 doc/fdmon.1 $(MANDIR)/fdmon.1

uninstall:
	rm -f $(BINDIR)/fdmon $(MANDIR)/fdmon.1

clean:
	$(CARGO) clean
	rm -rf $(VENV)
