// SPDX-License-Identifier: GPL-2.0
/*
 * dax_direct_access() hands out a plain pfn, every DAX pfn having a struct
 * page: Linux 6.17, "mm: remove pfn_t" (before, a pfn_t with flags).
 */
#include <linux/dax.h>

long probe(struct dax_device *dax_dev, void **kaddr, unsigned long *pfn);
long probe(struct dax_device *dax_dev, void **kaddr, unsigned long *pfn)
{
	return dax_direct_access(dax_dev, 0, 1, DAX_ACCESS, kaddr, pfn);
}
