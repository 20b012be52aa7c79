// Memory figures from /proc/self (procmem.h).
#include "procmem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long procmem_status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) v = atol(line + n);
    if (f) fclose(f);
    return v;
}

int procmem_reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;   // 5: reset the peak resident size to the current one
    return fclose(f) == 0 && ok;
}
