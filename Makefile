# The README's contract: `make demo` runs the main job, `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
TRACEFS := /sys/kernel/tracing

.PHONY: demo test test-vm test-matrix bpf bpf-check bench venv tracefs clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

tracefs:
	@[ -e $(TRACEFS)/events/syscalls ] || mount -t tracefs nodev $(TRACEFS)

demo: venv tracefs
	$(PY) scripts/demo.py

# the VM kernel matrix is its own target (QEMU/TCG guests, minutes): CI runs both
test: venv tracefs
	$(PY) -m pytest --ignore=tests/vm $(PYTEST_ARGS)

# Debian 6.1/6.12 x86_64 and arm64 kernels under QEMU, each running tests/kernel's
# cases per hook rung (tests/vm/README.md); BINDTRACE_VM_GUESTS=a,b picks guests
test-vm: venv
	$(PY) -m pytest tests/vm $(PYTEST_ARGS)

# The Ansible tests (module, callback, playbook, installed tarball, ansible-test
# sanity) once per supported controller: MATRIX="oldest default newest" (all by
# default); scripts/matrix.py says which ansible-core and Python each row is.
MATRIX ?=
test-matrix: venv tracefs
	$(PY) scripts/matrix.py $(MATRIX)

# The BPF source has one home, the collection's bpf/ (the tarball ships it beside the
# objects embedded from it, GPL-2.0); bpf/ holds the build (Makefile, embed.py,
# gen_layout.py) and the objects.
COLLECTION_BPF := collection/ansible_collections/fleetaudit/bindtrace/bpf
BPF_SOURCES := bind.bpf.c bind.h core_types.h

bpf:
	$(MAKE) -C bpf

# Rebuild both architectures' objects from source in a scratch copy and compare them byte
# for byte with the committed ones (a private scratch directory: other checkouts may run
# this at the same time); then the embedded objects and header, and bind.h's layout
# against record.py.
bpf-check:
	D=$$(mktemp -d /tmp/bindtrace-bpf-check.XXXXXX) && \
	for f in $(BPF_SOURCES); do cp $(COLLECTION_BPF)/$$f $$D/; done && \
	cp bpf/Makefile bpf/embed.py bpf/gen_layout.py $$D/ && \
	$(MAKE) -s -C $$D objects SRC=$$D && cmp bpf/bind.x86_64.bpf.o $$D/bind.x86_64.bpf.o && \
	cmp bpf/bind.arm64.bpf.o $$D/bind.arm64.bpf.o; rc=$$?; rm -rf $$D; exit $$rc
	$(PY) -c "import sys; sys.path.insert(0,'collection/ansible_collections/fleetaudit/bindtrace/plugins/module_utils'); \
	from bindtrace import bpf_object as b; \
	assert b.object_bytes('x86_64')==open('bpf/bind.x86_64.bpf.o','rb').read() and \
	b.object_bytes('aarch64')==open('bpf/bind.arm64.bpf.o','rb').read() and \
	b.BIND_H==open('$(COLLECTION_BPF)/bind.h').read(), 'bpf_object.py is stale: run make bpf'; \
	print('bpf objects (x86_64, arm64) match their source')"
	cd bpf && python3 gen_layout.py --check ../$(COLLECTION_BPF)/bind.h bind.x86_64.bpf.o \
		../collection/ansible_collections/fleetaudit/bindtrace/plugins/module_utils/bindtrace/bind_h.py

bench: venv tracefs
	$(PY) tests/bench/run_all.py

clean:
	rm -rf $(VENV) .venv-matrix .pytest_cache
