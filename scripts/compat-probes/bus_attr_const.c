// SPDX-License-Identifier: GPL-2.0
/*
 * Bus attribute callbacks take a const struct bus_type.
 * Linux 6.4, "driver core: bus: mark the struct bus_type for sysfs
 * callbacks as constant".
 */
#include <linux/device.h>

static ssize_t probe_show(const struct bus_type *bus, char *buf)
{
	return 0;
}

struct bus_attribute probe_attr = __ATTR(probe, 0444, probe_show, NULL);
