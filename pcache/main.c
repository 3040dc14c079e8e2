// SPDX-License-Identifier: GPL-2.0
/*
 * pcache: a persistent-memory cache in front of block devices.
 *
 * Module entry points and the control root, /sys/bus/pcache/.  Commands that
 * create and destroy cache devices (register, unregister) live on the bus,
 * never on the objects they destroy.  See docs/ABI/sysfs-bus-pcache.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/ctype.h>
#include <linux/device.h>
#include <linux/module.h>
#include <linux/parser.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "pcache.h"

#define PCACHE_VERSION "0.1"

DEFINE_MUTEX(pcache_lock);	/* pcache_caches; taken before any cache->lock */
LIST_HEAD(pcache_caches);
struct device *pcache_root_dev;

/*
 * Bios to backing devices, allocated in the I/O path.  A rescuer keeps
 * allocation from deadlocking when it happens under submit_bio().
 */
struct bio_set pcache_bio_set;

/*
 * A size: decimal (or 0x hex) bytes with an optional K, M, G or T suffix.
 * Unlike memparse(), overflow is an error rather than a wrapped value.
 */
int pcache_parse_size(const char *str, u64 *size)
{
	static const char suffixes[] = "KMGT";
	char digits[24];
	size_t len = strlen(str);
	const char *suffix;
	unsigned int shift = 0;
	int ret;

	if (!len)
		return -EINVAL;
	suffix = strchr(suffixes, toupper(str[len - 1]));
	if (suffix && *suffix) {
		shift = 10 * (suffix - suffixes + 1);
		len--;
	}
	if (!len || len >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, str, len);
	digits[len] = '\0';
	ret = kstrtou64(digits, 0, size);
	if (ret)
		return -EINVAL;
	if (*size > (U64_MAX >> shift))
		return -EINVAL;
	*size <<= shift;
	return 0;
}

/* An unsigned number of a match_token() argument; overflow is an error. */
int pcache_match_uint(substring_t *arg, unsigned int *value)
{
	char *str = match_strdup(arg);
	int ret;

	if (!str)
		return -ENOMEM;
	ret = kstrtouint(str, 10, value) ? -EINVAL : 0;
	kfree(str);
	return ret;
}

enum {
	OPT_PATH,
	OPT_FORMAT,
	OPT_FORCE,
	OPT_SEGMENT_SIZE,
	OPT_DATA_CRC,
	OPT_CACHE,
	OPT_ERR,
};

static const match_table_t register_tokens = {
	{ OPT_PATH, "path=%s" },
	{ OPT_FORMAT, "format" },
	{ OPT_FORCE, "force" },
	{ OPT_SEGMENT_SIZE, "segment_size=%s" },
	{ OPT_DATA_CRC, "data_crc" },
	{ OPT_ERR, NULL },
};

static ssize_t register_store(pcache_bus_type_arg *bus, const char *buf,
			      size_t count)
{
	substring_t args[MAX_OPT_ARGS];
	bool format = false, force = false, segment_size_given = false;
	u32 segment_size = PCACHE_SEGMENT_SIZE_DEFAULT;
	u64 sb_flags = 0;
	char *options, *opt, *cursor, *path = NULL;
	u64 size;
	int ret = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	/* A cache pins the module: none may be created once rmmod has begun. */
	if (!try_module_get(THIS_MODULE))
		return -ENODEV;
	options = kstrndup(buf, count, GFP_KERNEL);
	if (!options) {
		module_put(THIS_MODULE);
		return -ENOMEM;
	}
	cursor = strim(options);

	while (!ret && (opt = strsep(&cursor, ",")) != NULL) {
		if (!*opt)
			continue;
		switch (match_token(opt, register_tokens, args)) {
		case OPT_PATH:
			kfree(path);
			path = match_strdup(&args[0]);
			if (!path)
				ret = -ENOMEM;
			break;
		case OPT_FORMAT:
			format = true;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case OPT_SEGMENT_SIZE:
			opt = args[0].from;
			if (pcache_parse_size(opt, &size) || size > U32_MAX) {
				pr_err("register: bad segment_size '%s'\n", opt);
				ret = -EINVAL;
				break;
			}
			segment_size = size;
			segment_size_given = true;
			break;
		case OPT_DATA_CRC:
			sb_flags |= PCACHE_SB_F_DATA_CRC;
			break;
		default:
			pr_err("register: unknown option '%s'\n", opt);
			ret = -EINVAL;
		}
	}
	if (ret)
		goto out;
	if (!path || !*path) {
		pr_err("register: path= is required (e.g. path=/dev/pmem0)\n");
		ret = -EINVAL;
		goto out;
	}
	if ((force || segment_size_given || sb_flags) && !format) {
		pr_err("register: force, segment_size and data_crc only go with format\n");
		ret = -EINVAL;
		goto out;
	}
	ret = pcache_cache_register(path, format, force, segment_size, sb_flags);
out:
	kfree(path);
	kfree(options);
	module_put(THIS_MODULE);
	return ret ? ret : count;
}
static BUS_ATTR_WO(register);

static const match_table_t unregister_tokens = {
	{ OPT_CACHE, "cache=%s" },
	{ OPT_ERR, NULL },
};

static ssize_t unregister_store(pcache_bus_type_arg *bus, const char *buf,
				size_t count)
{
	substring_t args[MAX_OPT_ARGS];
	char *options, *opt;
	unsigned int id;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	options = kstrndup(buf, count, GFP_KERNEL);
	if (!options)
		return -ENOMEM;
	opt = strim(options);
	if (match_token(opt, unregister_tokens, args) != OPT_CACHE ||
	    pcache_match_uint(&args[0], &id) || id > INT_MAX) {
		pr_err("unregister: expected cache=N, got '%s'\n", opt);
		ret = -EINVAL;
	} else {
		ret = pcache_cache_unregister(id);
	}
	kfree(options);
	return ret ? ret : count;
}
static BUS_ATTR_WO(unregister);

/* The on-media format version this module reads and writes. */
static ssize_t format_version_show(pcache_bus_type_arg *bus, char *buf)
{
	return sysfs_emit(buf, "%d\n", PCACHE_FORMAT_VERSION);
}
static BUS_ATTR_RO(format_version);

static struct attribute *pcache_bus_attrs[] = {
	&bus_attr_register.attr,
	&bus_attr_unregister.attr,
	&bus_attr_format_version.attr,
	NULL,
};
ATTRIBUTE_GROUPS(pcache_bus);

struct bus_type pcache_bus_type = {
	.name		= "pcache",
	.bus_groups	= pcache_bus_groups,
};

static int __init pcache_init(void)
{
	int ret;

	ret = bioset_init(&pcache_bio_set, BIO_POOL_SIZE, 0,
			  BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER);
	if (ret)
		return ret;
	ret = pcache_cache_init();
	if (ret)
		goto out_bioset;
	ret = pcache_disk_init();
	if (ret)
		goto out_cache;
	pcache_root_dev = root_device_register("pcache");
	if (IS_ERR(pcache_root_dev)) {
		ret = PTR_ERR(pcache_root_dev);
		goto out_disk;
	}
	ret = bus_register(&pcache_bus_type);
	if (ret) {
		pr_err("cannot register the pcache bus: %d\n", ret);
		goto out_root;
	}
	pr_info("version %s loaded (on-media format %d)\n", PCACHE_VERSION,
		PCACHE_FORMAT_VERSION);
	return 0;

out_root:
	root_device_unregister(pcache_root_dev);
out_disk:
	pcache_disk_exit();
out_cache:
	pcache_cache_exit();
out_bioset:
	bioset_exit(&pcache_bio_set);
	return ret;
}

/* Every cache device holds a module reference: none is left here. */
static void __exit pcache_exit(void)
{
	bus_unregister(&pcache_bus_type);
	root_device_unregister(pcache_root_dev);
	pcache_disk_exit();
	pcache_cache_exit();
	bioset_exit(&pcache_bio_set);
	pr_info("unloaded\n");
}

module_init(pcache_init);
module_exit(pcache_exit);

MODULE_DESCRIPTION("Persistent memory cache for block devices");
MODULE_AUTHOR("pcache developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(PCACHE_VERSION);
