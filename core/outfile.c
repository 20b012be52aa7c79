#include "outfile.h"
#include "interrupt.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outfile_open(outfile *o, const char *path, err *e) {
    o->f = NULL;
    o->slot = -1;
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path)
        return err_set(e, OODSEG_E_ARG, "output path too long: %s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd < 0) return err_set(e, OODSEG_E_IO, "cannot write %s: %s", path, strerror(errno));
    o->slot = interrupt_track(o->tmp);
    // mkstemp makes the file 0600; an output should be readable like any other file.
    (void)fchmod(fd, 0644);
    if (!(o->f = fdopen(fd, "wb"))) {
        int er = errno;
        close(fd);
        unlink(o->tmp);
        interrupt_untrack(o->slot);
        return err_set(e, OODSEG_E_IO, "cannot write %s: %s", path, strerror(er));
    }
    return OODSEG_OK;
}

int outfile_commit(outfile *o, int ok, err *e) {
    int er = 0;
    if (ferror(o->f) || fflush(o->f) != 0) { ok = 0; er = errno; }
    if (fclose(o->f) != 0 && ok) { ok = 0; er = errno; }
    o->f = NULL;
    if (ok && rename(o->tmp, o->path) != 0) { ok = 0; er = errno; }
    if (!ok) unlink(o->tmp);
    interrupt_untrack(o->slot);
    o->slot = -1;
    if (ok) return OODSEG_OK;
    return err_set(e, OODSEG_E_IO, "writing %s failed%s%s; check the folder exists, is writable and has free space",
                   o->path, er ? ": " : "", er ? strerror(er) : "");
}

void outfile_abort(outfile *o) {
    if (o->f) fclose(o->f);
    o->f = NULL;
    unlink(o->tmp);
    interrupt_untrack(o->slot);
    o->slot = -1;
}
