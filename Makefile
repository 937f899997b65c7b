# fdmon — build, test and install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
PYTHON ?= python3
VENV ?= .venv

.PHONY: all build static run test check unit interop venv install uninstall clean

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

install: build
	install -d $(BINDIR) $(MANDIR)
	install -m 0755 target/release/fdmon $(BINDIR)/fdmon
	install -m 0644 doc/fdmon.1 $(MANDIR)/fdmon.1

uninstall:
	rm -f $(BINDIR)/fdmon $(MANDIR)/fdmon.1

clean:
	$(CARGO) clean
	rm -rf $(VENV)
