// SPDX-License-Identifier: GPL-2.0
/*
 * pcache: a persistent-memory cache in front of block devices.
 *
 * Module entry points and the control root, /sys/bus/pcache/.  Commands that
 * create and destroy cache and backing devices live on the bus, never on the
 * objects they destroy.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/device.h>
#include <linux/sysfs.h>

#include <pcache/format.h>
#include "compat.h"

#define PCACHE_VERSION "0.1"

/* The on-media format version this module reads and writes. */
static ssize_t format_version_show(pcache_bus_type_arg *bus, char *buf)
{
	return sysfs_emit(buf, "%d\n", PCACHE_FORMAT_VERSION);
}
static BUS_ATTR_RO(format_version);

static struct attribute *pcache_bus_attrs[] = {
	&bus_attr_format_version.attr,
	NULL,
};
ATTRIBUTE_GROUPS(pcache_bus);

static struct bus_type pcache_bus_type = {
	.name		= "pcache",
	.bus_groups	= pcache_bus_groups,
};

static int __init pcache_init(void)
{
	int ret;

	ret = bus_register(&pcache_bus_type);
	if (ret) {
		pr_err("cannot register the pcache bus: %d\n", ret);
		return ret;
	}
	pr_info("version %s loaded (on-media format %d)\n", PCACHE_VERSION,
		PCACHE_FORMAT_VERSION);
	return 0;
}

static void __exit pcache_exit(void)
{
	bus_unregister(&pcache_bus_type);
	pr_info("unloaded\n");
}

module_init(pcache_init);
module_exit(pcache_exit);

MODULE_DESCRIPTION("Persistent memory cache for block devices");
MODULE_AUTHOR("pcache developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(PCACHE_VERSION);
