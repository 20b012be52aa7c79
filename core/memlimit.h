// Memory limits (--max-memory): one number of bytes per run, passed explicitly to what allocates
// on an input's say-so (the parsers, the image decoder, the forward pass). Nothing here is global:
// the default is computed when asked, and each caller keeps the limit it was given.
#ifndef OODSEG_CORE_MEMLIMIT_H
#define OODSEG_CORE_MEMLIMIT_H

#include <stdint.h>
#include <stddef.h>
#include "err.h"

// The default margin: what the default limit leaves to the system below the available memory,
// the larger of a tenth of it and MEMLIMIT_MARGIN_MIN. It covers what the limit does not count:
// the page cache a mapped checkpoint is read through, OpenMP and BLAS thread stacks and buffers,
// the decoders' row buffers, and the other processes of the machine.
#define MEMLIMIT_MARGIN_MIN ((uint64_t)256 << 20)
// Never a default below this (a machine reporting almost nothing available still runs small inputs).
#define MEMLIMIT_FLOOR ((uint64_t)64 << 20)

// The machine's available memory: MemAvailable of /proc/meminfo (else sysconf's available pages),
// and no more than a cgroup v2 limit leaves (memory.max - memory.current), where there is one.
uint64_t memlimit_available(void);
// The default limit: memlimit_available() less the margin (at least MEMLIMIT_FLOOR).
uint64_t memlimit_default(void);
// The limit to use: `limit` when set (> 0), else memlimit_default().
uint64_t memlimit_resolve(uint64_t limit);

// Parses "8G", "512M", "1.5G", "300000K", "1073741824" (binary units: K = 1024; a trailing "B" or
// "iB" is accepted) into bytes, at least 1 MiB. OODSEG_E_ARG naming `opt` otherwise.
int memlimit_parse(const char *s, const char *opt, uint64_t *out, err *e);
// Bytes as "1.5 GiB", "300 MiB", "12 KiB" or "100 B" into buf.
const char *memlimit_str(uint64_t bytes, char *buf, size_t cap);

// OODSEG_OK when `need` bytes fit under `limit` (0: no limit); otherwise OODSEG_E_NOMEM with
// "<what> needs N, over the memory limit of M; <remedy>" (remedy: what to change, e.g. "use a
// smaller --size or raise --max-memory").
int memlimit_check(uint64_t need, uint64_t limit, const char *what, const char *remedy, err *e);

// The pixel cap of an image under `limit`: a decoded image costs 3 bytes per pixel, and a run
// keeps per-pixel buffers at the image's size for each one it scores (the preprocessing's float
// copy, score maps, the label, pictures): MEMLIMIT_BYTES_PER_IMAGE_PIXEL in all. limit 0: no cap.
#define MEMLIMIT_BYTES_PER_IMAGE_PIXEL 32
int64_t memlimit_image_pixels(uint64_t limit);

#endif
