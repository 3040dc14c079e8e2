# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of pcache/index.c, the very file the module builds,
# compiled in userspace against the kernel's own red-black tree: lib/rbtree.c
# and its headers, taken at build time from the Debian kernel source
# (linux-source-6.1), never copied into the repository.
#
#   make -f tests/host/index.mk check-index     (from the top of the tree)
#   or include this file from another makefile and make check-index there.
#
#   PCACHE_TEST_SEED=N   replay the randomized test with seed N
#   INDEX_OPS=N          operations per randomized run (default 200000)
#
# Everything it builds goes to build/host/index/.  Debian packages:
# linux-source-6.1, libcmocka-dev, gcc.  Variables and targets all start
# with INDEX_ or index so that including this file changes nothing else.

INDEX_HERE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
INDEX_TOP := $(abspath $(INDEX_HERE)/../..)
INDEX_O := $(INDEX_TOP)/build/host/index
# Keep the includer's default goal; standing alone, check-index is it.
INDEX_SAVED_GOAL := $(.DEFAULT_GOAL)

INDEX_HOSTCC ?= gcc
INDEX_KSRC_TAR ?= /usr/src/linux-source-6.1.tar.xz
INDEX_KSRC_DIR := linux-source-6.1
INDEX_KFILES := lib/rbtree.c include/linux/rbtree.h \
		include/linux/rbtree_types.h include/linux/rbtree_augmented.h
INDEX_K := $(INDEX_O)/kernel

# Our shims first, then the kernel's rbtree headers, then the shims of the
# meta tests (types.h, kernel.h), then the system.
INDEX_CPPFLAGS := -I$(INDEX_HERE)/shim-index -I$(INDEX_K)/include \
		  -I$(INDEX_HERE)/shim -iquote $(INDEX_TOP)/pcache
INDEX_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer \
		-fno-strict-aliasing -Wall -Wextra -Werror \
		-fsanitize=address,undefined -fno-sanitize-recover=all
# lib/rbtree.c is the kernel's, built with the kernel's warnings in mind.
INDEX_KCFLAGS := -Wno-unused-parameter

INDEX_HDRS := $(INDEX_TOP)/pcache/index.h \
	      $(wildcard $(INDEX_HERE)/shim-index/linux/*.h) \
	      $(wildcard $(INDEX_HERE)/shim/linux/*.h)

.PHONY: check-index index-clean

check-index: $(INDEX_O)/test_index
	$(INDEX_O)/test_index

$(INDEX_K)/.extracted: $(INDEX_KSRC_TAR)
	@mkdir -p $(INDEX_K)
	tar -xJf $< -C $(INDEX_K) --strip-components=1 \
		$(addprefix $(INDEX_KSRC_DIR)/,$(INDEX_KFILES))
	@touch $@

$(INDEX_O)/rbtree.o: $(INDEX_K)/.extracted $(INDEX_HDRS)
	$(INDEX_HOSTCC) $(INDEX_CPPFLAGS) $(INDEX_CFLAGS) $(INDEX_KCFLAGS) \
		-c -o $@ $(INDEX_K)/lib/rbtree.c

$(INDEX_O)/index.o: $(INDEX_TOP)/pcache/index.c $(INDEX_K)/.extracted \
		    $(INDEX_HDRS)
	$(INDEX_HOSTCC) $(INDEX_CPPFLAGS) $(INDEX_CFLAGS) -c -o $@ $<

$(INDEX_O)/shim_index.o: $(INDEX_HERE)/shim-index/shim_index.c \
			 $(INDEX_K)/.extracted $(INDEX_HDRS)
	$(INDEX_HOSTCC) $(INDEX_CPPFLAGS) $(INDEX_CFLAGS) -c -o $@ $<

$(INDEX_O)/test_index: $(INDEX_HERE)/test_index.c $(INDEX_O)/index.o \
		       $(INDEX_O)/rbtree.o $(INDEX_O)/shim_index.o
	$(INDEX_HOSTCC) $(INDEX_CPPFLAGS) $(INDEX_CFLAGS) -o $@ $^ \
		-lcmocka -lpthread

index-clean:
	rm -rf $(INDEX_O)

ifeq ($(INDEX_SAVED_GOAL),)
ifeq ($(words $(MAKEFILE_LIST)),1)
.DEFAULT_GOAL := check-index
else
.DEFAULT_GOAL :=
endif
else
.DEFAULT_GOAL := $(INDEX_SAVED_GOAL)
endif
