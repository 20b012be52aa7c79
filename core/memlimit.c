// --max-memory: parsing, the machine's default, and the one message every refusal shares.
#include "memlimit.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The kB value of `key` in /proc/meminfo, or 0.
static uint64_t meminfo_kb(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') { v = strtoull(line + n + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

// One number from a cgroup file, or 0 ("max", missing, unreadable).
static uint64_t cgroup_value(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[64] = "";
    uint64_t v = 0;
    if (fgets(buf, sizeof buf, f) && isdigit((unsigned char)buf[0])) v = strtoull(buf, NULL, 10);
    fclose(f);
    return v;
}

uint64_t memlimit_available(void) {
    uint64_t avail = meminfo_kb("MemAvailable") * 1024;
    if (!avail) {
        long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psz > 0) avail = (uint64_t)pages * (uint64_t)psz;
    }
    // A container's limit is where the OOM killer acts, whatever the machine has free.
    uint64_t max = cgroup_value("/sys/fs/cgroup/memory.max"), cur = cgroup_value("/sys/fs/cgroup/memory.current");
    if (max) {
        uint64_t left = max > cur ? max - cur : 0;
        if (!avail || left < avail) avail = left;
    }
    return avail;
}

uint64_t memlimit_default(void) {
    uint64_t avail = memlimit_available(), margin = avail / 10;
    if (margin < MEMLIMIT_MARGIN_MIN) margin = MEMLIMIT_MARGIN_MIN;
    return avail > margin + MEMLIMIT_FLOOR ? avail - margin : MEMLIMIT_FLOOR;
}

uint64_t memlimit_resolve(uint64_t limit) { return limit ? limit : memlimit_default(); }

int memlimit_parse(const char *s, const char *opt, uint64_t *out, err *e) {
    char *end;
    errno = 0;
    double x = s ? strtod(s, &end) : 0;
    if (!s || end == s || errno || !(x > 0) || !isfinite(x)) goto bad;
    double unit = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': unit = 1024.0; end++; break;
    case 'M': unit = 1048576.0; end++; break;
    case 'G': unit = 1073741824.0; end++; break;
    case 'T': unit = 1099511627776.0; end++; break;
    default: break;
    }
    if (unit > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) goto bad;
    double b = x * unit;
    if (b < 1048576.0)
        return err_set(e, OODSEG_E_ARG, "--%s '%s': at least 1M (one MiB) is needed", opt, s);
    if (b >= 18446744073709551615.0) goto bad;
    *out = (uint64_t)b;
    return OODSEG_OK;
bad:
    return err_set(e, OODSEG_E_ARG, "--%s '%s': expected a size such as 8G, 512M or 1.5G (binary units)", opt,
                   s ? s : "(null)");
}

const char *memlimit_str(uint64_t bytes, char *buf, size_t cap) {
    static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)bytes;
    int k = 0;
    while (v >= 1024 && k < 6) { v /= 1024; k++; }
    if (k == 0) snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    else snprintf(buf, cap, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, u[k]);
    return buf;
}

int memlimit_check(uint64_t need, uint64_t limit, const char *what, const char *remedy, err *e) {
    if (!limit || need <= limit) return OODSEG_OK;
    char a[32], b[32];
    return err_set(e, OODSEG_E_NOMEM, "%s needs %s, over the memory limit of %s (--max-memory); %s", what,
                   memlimit_str(need, a, sizeof a), memlimit_str(limit, b, sizeof b), remedy);
}

int64_t memlimit_image_pixels(uint64_t limit) {
    if (!limit) return INT64_MAX;
    uint64_t px = limit / MEMLIMIT_BYTES_PER_IMAGE_PIXEL;
    return px > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)px;
}
