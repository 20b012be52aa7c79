// Input files are opened with O_NONBLOCK and checked with fstat before a byte is read: opening a
// FIFO for reading would otherwise block until some writer appears, which for a mistyped path
// is forever. O_NONBLOCK changes nothing for a regular file, but it is cleared anyway so that the
// descriptor behaves as an ordinary one.
#include "file.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISFIFO(m)) return "a named pipe (FIFO)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISDIR(m)) return "a directory";
    return "not a regular file";
}

static int not_regular(const char *path, const char *what, mode_t m, err *e) {
    return err_set(e, OODSEG_E_IO, "%s '%s' is %s, not a regular file: give the path of the %s file itself "
                   "(copy a stream to a file first)", what, path, kind_of(m), what);
}

int io_open_regular(const char *path, const char *what, int64_t *size, err *e) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int open_errno = errno;
        // A socket cannot be opened at all (ENXIO); say what it is rather than quote errno.
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) not_regular(path, what, st.st_mode, e);
        else err_set(e, OODSEG_E_IO, "cannot open %s '%s': %s", what, path, strerror(open_errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        err_set(e, OODSEG_E_IO, "cannot read %s '%s': %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        not_regular(path, what, st.st_mode, e);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size) *size = (int64_t)st.st_size;
    return fd;
}

FILE *io_fopen_regular(const char *path, const char *what, int64_t *size, err *e) {
    int fd = io_open_regular(path, what, size, e);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        err_set(e, OODSEG_E_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
        close(fd);
    }
    return f;
}
