# SPDX-License-Identifier: GPL-2.0
#
# trapvm top level.
#
#   make            build the module (against KDIR), vmctl and the guests
#   make check      install what is missing, build, run every test
#   make demo       boot the test host and run the default guest
#   make bench      sparrow's benchmarks: native, trapvm, nested QEMU
#
# KDIR defaults to the running kernel's build tree; the test host uses
# Debian's 6.1 headers (see Documentation/testing.rst).

KDIR ?= /lib/modules/$(shell uname -r)/build

.PHONY: all module tools clean check demo

all: module tools guests

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
	$(MAKE) -C tools/vmctl

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	$(MAKE) -C tools/vmctl clean
	$(MAKE) -C guests/sparrow clean
	rm -rf build

# --- guests: the sparrow guest OS (guests/sparrow, Documentation/guest-os.rst)
.PHONY: guests check-guests
guests:
	$(MAKE) -C guests/sparrow

# make check runs this from selftests/host.list, so it counts in the tally
check-guests: deps guests
	selftests/guests/sparrow_native.sh
# --- end guests

# --- test host: deps, check, demo (Documentation/testing.rst)
.PHONY: deps
deps:
	scripts/deps.sh

check: deps
	scripts/check.sh

demo: deps
	scripts/demo.sh
# --- end test host

# --- bench: sparrow natively, under trapvm and under nested QEMU
# (tools/bench/, Documentation/benchmarks.rst)
.PHONY: bench check-bench
bench: deps
	tools/bench/bench.sh

# report.py's arithmetic and failure handling, on hand-made runs (~2 s);
# make check runs it from selftests/host.list
check-bench:
	tools/bench/selftest.py
# --- end bench
