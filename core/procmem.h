// The process's own memory figures from /proc/self (Linux), for the benches and `oodseg bench`:
// the resident size, and the high-water mark of one stretch of work (reset VmHWM, run, read it).
#ifndef OODSEG_CORE_PROCMEM_H
#define OODSEG_CORE_PROCMEM_H

// A "Field:" line of /proc/self/status in kB ("VmRSS:", "VmHWM:"); -1 when it cannot be read.
long procmem_status_kb(const char *field);
// Resets VmHWM to the current resident size (/proc/self/clear_refs); 0 where the kernel refuses.
int procmem_reset_hwm(void);

#endif
