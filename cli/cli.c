#include "cli.h"
#include "../io/file.h"
#include "../nn/nn.h"
#include "../io/video.h"
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_fail(const err *e) {
    if (e->code == CLI_HELP) return 0;
    fprintf(stderr, "oodseg: %s\n", e->msg[0] ? e->msg : err_code_name(e->code));
    return e->code ? e->code : OODSEG_E_INTERNAL;
}

int cli_parse(int argc, char **argv, int first, const char *cmd, cli_common *c, cli_extra_fn extra, void *ctx,
              err *e) {
    memset(c, 0, sizeof *c);
    pipeline_config_default(&c->cfg);
    c->pos = calloc((size_t)argc + 1, sizeof(char *));
    if (!c->pos) return err_set(e, OODSEG_E_NOMEM, "out of memory parsing arguments");
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) { c->pos[c->n_pos++] = argv[i]; continue; }
        if (strcmp(a, "--") == 0) { while (++i < argc) c->pos[c->n_pos++] = argv[i]; break; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { cli_help(cmd); return err_set(e, CLI_HELP, "help"); }
        if (extra) {
            int used = extra(ctx, argc, argv, i, e);
            if (used < 0) return e->code;
            if (used > 0) { i += used - 1; continue; }
        }
        if (!strcmp(a, "--tta")) { pipeline_config_set(&c->cfg, "tta", "on", e); continue; }   // a switch
        const char *key = a + (a[1] == '-' ? 2 : 1);
        const char *val = NULL;
        char keybuf[64];
        const char *eq = strchr(key, '=');
        if (eq) {
            snprintf(keybuf, sizeof keybuf, "%.*s", (int)(eq - key), key);
            key = keybuf;
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return err_set(e, OODSEG_E_ARG, "%s needs a value", a);
            val = argv[++i];
        }
        if (!strcmp(key, "o") || !strcmp(key, "out")) { c->out_dir = val; continue; }
        int r = pipeline_config_set(&c->cfg, key, val, e);
        if (r == 1) return err_set(e, OODSEG_E_ARG, "unknown option %s (see oodseg %s --help)", a, cmd);
        if (r) return r;
    }
    return OODSEG_OK;
}

void cli_free(cli_common *c) { free(c->pos); c->pos = NULL; }

void cli_progress(const char *what, int done, int total, double started) {
    if (total <= 0) return;
    double el = omp_get_wtime() - started;
    double eta = done > 0 ? el / done * (total - done) : 0;
    if (!isatty(2)) {
        int step = total > 40 ? total / 20 : 1;
        if (done % step == 0 || done == total)
            fprintf(stderr, "%s: %d/%d images, %.1f s elapsed, ETA %.1f s\n", what, done, total, el, eta);
        return;
    }
    int width = 30, fill = (int)((double)done / total * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %d/%d  %.1fs elapsed, ETA %.1fs ", what, bar, done, total, el, eta);
    if (done == total) fprintf(stderr, "\n");
    fflush(stderr);
}

static int is_image_name(const char *n) {
    const char *d = strrchr(n, '.');
    if (!d) return 0;
    return !strcasecmp(d, ".png") || !strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") || !strcasecmp(d, ".webp");
}

static dist the_dist = {0, 1, 0};
int cli_dist_init(int *argc, char ***argv, err *e) { return dist_init(argc, argv, &the_dist, e); }
const dist *cli_dist(void) { return &the_dist; }
void cli_dist_finalize(void) { dist_finalize(&the_dist); }

void cli_rank_threads(pipeline_config *cfg) {
    if (the_dist.size <= 1 || cfg->threads > 0) return;
    const char *l = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!l) l = getenv("SLURM_NTASKS_PER_NODE");
    int local = l ? atoi(l) : 1, n = omp_get_num_procs() / (local > 0 ? local : 1);
    cfg->threads = n > 0 ? n : 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int push(char ***v, int *n, int *cap, const char *s, err *e) {
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        char **nv = realloc(*v, (size_t)nc * sizeof(char *));
        if (!nv) return err_set(e, OODSEG_E_NOMEM, "out of memory listing images");
        *v = nv; *cap = nc;
    }
    if (!((*v)[*n] = strdup(s))) return err_set(e, OODSEG_E_NOMEM, "out of memory listing images");
    (*n)++;
    return OODSEG_OK;
}

static const char *base_name(const char *p) {
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

// A file list: one path a line (relative paths from the list's folder), blank lines and # comments
// skipped.
static int read_list(const char *list, char ***v, int *cnt, int *cap, err *e) {
    // A regular file only: a named pipe or a device would block the run.
    FILE *f = io_fopen_regular(list, "list", NULL, e);
    if (!f) return e->code;
    char line[4096], dir[4096];
    snprintf(dir, sizeof dir, "%s", list);
    char *sl = strrchr(dir, '/');
    if (sl) sl[1] = 0; else dir[0] = 0;
    int rc = OODSEG_OK, before = *cnt;
    while (!rc && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char p[8200];
        snprintf(p, sizeof p, "%s%s", line[0] == '/' ? "" : dir, line);
        rc = push(v, cnt, cap, p, e);
    }
    fclose(f);
    if (!rc && *cnt == before) rc = err_set(e, OODSEG_E_ARG, "%s: the list names no file", list);
    return rc;
}

static int collect(char **args, int n, int videos, int lists, char ***paths, int *n_paths, int *any_folder, err *e);

int cli_collect_images(char **args, int n, char ***paths, int *n_paths, int *any_folder, err *e) {
    return collect(args, n, 0, 0, paths, n_paths, any_folder, e);
}

int cli_collect_inputs(char **args, int n, int lists, char ***paths, int *n_paths, int *any_folder, err *e) {
    return collect(args, n, 1, lists, paths, n_paths, any_folder, e);
}

static int collect(char **args, int n, int videos, int lists, char ***paths, int *n_paths, int *any_folder, err *e) {
    char **v = NULL;
    int cnt = 0, cap = 0, own = 0;
    if (any_folder) *any_folder = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(args[i], &st) != 0) {
            err_set(e, OODSEG_E_IO, "%s: %s", args[i], strerror(errno));
            goto fail;
        }
        const char *ext = strrchr(args[i], '.');
        if (lists && S_ISREG(st.st_mode) && ext && !strcasecmp(ext, ".txt")) {
            if (read_list(args[i], &v, &cnt, &cap, e)) goto fail;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (pipeline_is_output_name(base_name(args[i]))) {
                fprintf(stderr, "oodseg: %s is named like an oodseg output; not read as an input\n", args[i]);
                own++;
                continue;
            }
            if (push(&v, &cnt, &cap, args[i], e)) goto fail;
            continue;
        }
        if (any_folder) *any_folder = 1;
        DIR *d = opendir(args[i]);
        if (!d) { err_set(e, OODSEG_E_IO, "%s: %s", args[i], strerror(errno)); goto fail; }
        int before = cnt, own_here = 0;
        for (struct dirent *de; (de = readdir(d));) {
            if (de->d_name[0] == '.' || !(is_image_name(de->d_name) || (videos && video_is_video_name(de->d_name)))) continue;
            if (pipeline_is_output_name(de->d_name)) { own_here++; continue; }
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", args[i], de->d_name);
            if (push(&v, &cnt, &cap, p, e)) { closedir(d); goto fail; }
        }
        closedir(d);
        if (own_here)
            fprintf(stderr, "oodseg: %s: left out %d file%s named like oodseg outputs (*_heat.png, *_overlay.png, "
                    "*_clusters.png, *_seg.png)\n", args[i], own_here, own_here == 1 ? "" : "s");
        own += own_here;
        if (cnt == before) {
            err_set(e, OODSEG_E_IO, "%s: the folder holds no image (.png, .jpg, .jpeg, .webp)%s", args[i],
                    own_here ? " besides oodseg outputs" : "");
            goto fail;
        }
        qsort(v + before, (size_t)(cnt - before), sizeof(char *), cmp_str);
    }
    if (cnt == 0) { err_set(e, OODSEG_E_ARG, own ? "no input image given besides oodseg outputs" : "no input image given"); goto fail; }
    *paths = v;
    *n_paths = cnt;
    return OODSEG_OK;
fail:
    cli_free_list(v, cnt);
    return e->code;
}

void cli_free_list(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

typedef struct stem_ix { char stem[512]; int i; } stem_ix;

static int cmp_stem(const void *a, const void *b) {
    const stem_ix *x = a, *y = b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : x->i - y->i;
}

int cli_check_stems(char **paths, int n, err *e) {
    stem_ix *s = malloc((size_t)n * sizeof *s);
    if (!s) return err_set(e, OODSEG_E_NOMEM, "out of memory checking the inputs' names");
    for (int i = 0; i < n; i++) { cli_stem(paths[i], s[i].stem, sizeof s[i].stem); s[i].i = i; }
    qsort(s, (size_t)n, sizeof *s, cmp_stem);
    int rc = OODSEG_OK;
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(s[i].stem, s[i - 1].stem))
            rc = err_set(e, OODSEG_E_ARG, "%s and %s would both write outputs named %s_*; nothing was written: score "
                         "them into separate -o folders, or rename one", paths[s[i - 1].i], paths[s[i].i], s[i].stem);
    free(s);
    return rc;
}

void cli_command_line(int argc, char **argv, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < argc && len + 4 < n; i++) {
        const char *a = i == 0 ? "oodseg" : argv[i];
        int plain = *a != 0;
        for (const char *p = a; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *p)) plain = 0;
        len += (size_t)snprintf(buf + len, n - len, i ? " " : "");
        if (plain) { len += (size_t)snprintf(buf + len, n - len, "%s", a); continue; }
        if (len < n) buf[len++] = '\'';
        for (const char *p = a; *p && len + 5 < n; p++) {
            if (*p == '\'') { memcpy(buf + len, "'\\''", 4); len += 4; }
            else buf[len++] = *p;
        }
        if (len < n) buf[len++] = '\'';
        buf[len < n ? len : n - 1] = 0;
    }
    if (len >= n) buf[n - 1] = 0;
}

void cli_stem(const char *path, char *stem, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(stem, n, "%s", b);
    char *d = strrchr(stem, '.');
    if (d && d != stem) *d = 0;
}

int cli_mkdir_p(const char *dir, err *e) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(e, OODSEG_E_IO, "cannot create folder %s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(e, OODSEG_E_IO, "cannot create folder %s: %s", p, strerror(errno));
    return OODSEG_OK;
}
