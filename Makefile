# SPDX-License-Identifier: GPL-2.0
#
# pcache: user-facing wrapper around kbuild and the guest test bench.
#
#   make                 build pcache.ko for the Debian 6.1 kernel (build/RELEASE/)
#   make KDIR=DIR        build against any kernel build tree, e.g.
#                        KDIR=/lib/modules/$(uname -r)/build on a real machine
#   make check           everything CI runs: set-up, both kernels with W=1 and
#                        -Werror, checkpatch, sparse, shellcheck, guest selftests;
#                        KERNEL=debug: instead the whole suite on the debug
#                        kernel, fault injection included (hours)
#   make demo            the main job: a guest with pmem and pcache, step by step
#   make bench           fio in one guest: pcache, raw pmem and peers (KERNEL=...)
#   make torture         the long torture runs on KERNEL (default 6.12): power
#                        cuts with filesystems and workloads for MINUTES
#                        (60) or CUTS (1000) cuts, then external workloads
#                        WORKLOAD_SECONDS (60) each; ends with a summary
#   make fuzz            host unit tests, then each fuzz target for 10 minutes
#                        (FUZZ_SECONDS=N to change)
#   make selftests       guest selftests only (KERNELS="6.1 6.12", TESTS=...);
#                        LONG=1 is the long mode (20 power cuts instead of 3)
#   make shell           an interactive guest shell with pmem and two disks
#   make install         on a real machine: build pcache.ko for the running
#                        kernel (or KDIR=DIR) and install it with the udev
#                        rules that assemble pcache at boot, and pcachectl
#                        (DESTDIR=DIR stages everything under DIR)
#   make uninstall       remove all of it again
#   make dkms-install    install the sources for DKMS, which builds the module
#                        now and for every kernel installed later
#   make dkms-check      DKMS builds and installs pcache for each of KERNELS
#                        (in private trees under build/dkms), and a guest of
#                        each kernel loads and uses that module
#   KERNEL=mainline, KERNELS=mainline: Debian sid's kernel, built in a sid
#                        chroot (scripts/setup-mainline.sh); never a default
#   KERNEL=debug, KERNELS=debug: linux-source-6.1 with KASAN, lockdep,
#                        kmemleak, failslab, fail_make_request, built once
#                        (scripts/setup-debug-kernel.sh, ~25 min); never a default.
#                        make check records what passed in docs/debug-ledger
#                        (PCACHE_DEBUG_LEDGER=FILE for another, = for none):
#                        a program that passed with the same code is not run
#                        again, so the run can be spread over sittings
#   make clean           remove build products (keeps downloaded kernels)
#
# Every target installs what it needs first (scripts/setup.sh, quiet when
# everything is there already).

KERNEL ?= 6.1
KERNELS ?= 6.1 6.12
TESTS ?= selftests/harness selftests/pcache
KDIR ?=
LONG ?=

.PHONY: all modules setup check demo bench torture fuzz selftests shell clean distclean \
	install uninstall dkms-install dkms-check

# Shell command building pcache for kernel $(1).  The mainline lane's
# headers need Debian sid's compiler: scripts/setup-mainline.sh sets up its
# sid chroot (quiet once done) and runs scripts/build.sh in there.
build_for = case $(1) in mainline) scripts/setup-mainline.sh --build ;; \
	debug) scripts/setup-debug-kernel.sh && scripts/build.sh debug ;; \
	*) scripts/build.sh $(1) ;; esac

all: modules

ifeq ($(KDIR),)
modules: setup
	@$(call build_for,$(KERNEL))
else
modules:
	@scripts/build.sh --kdir $(KDIR)
endif

setup:
	@scripts/setup.sh

check:
	@scripts/check.sh

demo: setup
	@$(call build_for,$(KERNEL)) >/dev/null
	@scripts/demo.sh --kernel $(KERNEL)

bench: setup
	@$(call build_for,$(KERNEL)) >/dev/null
	@scripts/bench.sh --kernel $(KERNEL)

# 6.12 unless KERNEL is given: its boots are the shorter.
torture_kernel = $(if $(filter file,$(origin KERNEL)),6.12,$(KERNEL))
torture: setup
	@$(call build_for,$(torture_kernel)) >/dev/null
	@scripts/torture.sh --kernel $(torture_kernel) \
		$(if $(CUTS),--cuts $(CUTS)) $(if $(MINUTES),--minutes $(MINUTES)) \
		$(if $(WORKLOAD_SECONDS),--workload-seconds $(WORKLOAD_SECONDS))

FUZZ_SECONDS ?= 600
fuzz: setup
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/unit-tests.sh

selftests: setup
	@for k in $(KERNELS); do $(call build_for,$$k) >/dev/null || exit 1; done
	@$(if $(LONG),PCACHE_TEST_CUTS=20 )scripts/selftests.sh $(foreach k,$(KERNELS),--kernel $(k)) $(TESTS)

shell: setup
	@$(call build_for,$(KERNEL)) >/dev/null
	@scripts/vm.sh --kernel $(KERNEL) --shell

install_args = $(if $(KDIR),--kdir $(KDIR)) $(if $(DESTDIR),--destdir $(DESTDIR))

install:
	@scripts/install.sh $(install_args)

uninstall:
	@scripts/install.sh --uninstall $(if $(DESTDIR),--destdir $(DESTDIR))

dkms-install:
	@scripts/install.sh --dkms $(if $(DESTDIR),--destdir $(DESTDIR))

dkms-check: setup
	@for k in $(KERNELS); do $(call build_for,$$k) >/dev/null || exit 1; done
	@scripts/dkms-check.sh $(KERNELS)

clean:
	rm -rf build/[0-9]* build/results build/vm build/dkms

distclean:
	rm -rf build
