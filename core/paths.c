#include "paths.h"
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *paths_library_dir(char *buf, size_t n) {
    Dl_info info;
    // Any function of the library will do: its address lies in the file that holds the library.
    if (!dladdr((void *)&paths_library_dir, &info) || !info.dli_fname) return NULL;
    // For code inside the executable glibc reports argv[0], which may be a bare name found through
    // PATH or a path relative to a directory the program has since left: the kernel's link is exact.
    const char *file = info.dli_fname;
    if (!*file || !strchr(file, '/') || strcmp(file, program_invocation_name) == 0) file = "/proc/self/exe";
    char real[PATH_MAX];
    if (!realpath(file, real)) return NULL;
    char *slash = strrchr(real, '/');
    if (!slash) return NULL;
    *slash = 0;
    if ((size_t)snprintf(buf, n, "%s", real[0] ? real : "/") >= n) return NULL;
    return buf;
}

const char *paths_default_model(char *buf, size_t n, err *e) {
    char tried[4][PATH_MAX + 64];
    int nt = 0;
    const char *assets = getenv("OODSEG_ASSETS");
    if (assets && *assets) snprintf(tried[nt++], sizeof tried[0], "%s/models/%s", assets, PATHS_DEFAULT_MODEL);
    char dir[PATH_MAX];
    int have_dir = paths_library_dir(dir, sizeof dir) != NULL;
    if (have_dir) {
        static const char *const rel[] = {"../share/oodseg/models", "../assets/models", "../../assets/models"};
        for (int i = 0; i < 3; i++)
            snprintf(tried[nt++], sizeof tried[0], "%s/%s/%s", dir, rel[i], PATHS_DEFAULT_MODEL);
    }
    struct stat st;
    for (int i = 0; i < nt; i++) {
        if (stat(tried[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if ((size_t)snprintf(buf, n, "%s", tried[i]) >= n) {
                err_set(e, OODSEG_E_INTERNAL, "default model path longer than %zu bytes: %s", n, tried[i]);
                return NULL;
            }
            return buf;
        }
    }
    char list[4 * (PATH_MAX + 64)] = "";
    for (int i = 0; i < nt; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, tried[i], sizeof list - strlen(list) - 1);
    }
    err_set(e, OODSEG_E_IO,
            "the default model %s is missing (tried: %s%s). Pass --model FILE, or download it from %s "
            "(SHA-256 %s) into $OODSEG_ASSETS/models/%s",
            PATHS_DEFAULT_MODEL, nt ? list : "nothing",
            !have_dir ? "; the library's own folder could not be found" : "", PATHS_DEFAULT_MODEL_URL,
            PATHS_DEFAULT_MODEL_SHA256, PATHS_DEFAULT_MODEL);
    return NULL;
}
