// The HTML report in a real browser: `oodseg eval` on the demo frames writes DIR/index.html with
// thumbnails, and `oodseg metrics` the same page without pictures; headless Chromium loads each
// from disk with JavaScript on (tests/browser_check.py: every <img> decoded, one row per image,
// sorting reorders, no console error). The page must stand alone (no network), and the
// thumbnails must stay small enough for RoadAnomaly-sized runs.
#include "test.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char bin[1024], root[1024], demo[1200];

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static int64_t file_size(const char *p) { struct stat st; return stat(p, &st) == 0 ? (int64_t)st.st_size : -1; }

// Runs tests/browser_check.py on page; 77 means Chromium is not installed.
static int browser(const char *page, int rows, const char *shot) {
    return t_sh("/usr/bin/python3 %s/tests/browser_check.py %s %d %s >&2", root, page, rows, shot ? shot : "");
}

static void page_stands_alone(const char *page, const char *model) {
    size_t n;
    char *s = t_slurp(page, &n);
    REQUIRE(s, "%s unreadable", page);
    CHECK(!strstr(s, "src=\"http") && !strstr(s, "href=\"http") && !strstr(s, "<link") && !strstr(s, "<script src") &&
          !strstr(s, "@import") && !strstr(s, "url("), "%s fetches something from elsewhere", page);
    CHECK(strstr(s, "<svg") && strstr(s, "Precision-recall curve") && strstr(s, "ROC curve"));
    CHECK(strstr(s, model), "the curves do not name the model (%s)", model);
    CHECK(strstr(s, "id=\"per-image\"") && strstr(s, "Hardest frames"));
    free(s);
}

TEST(eval_page_with_thumbnails_in_a_browser) {
    char out[600], page[700], cmd[3000];
    snprintf(out, sizeof out, "%s/eval", t_tmpdir());
    snprintf(page, sizeof page, "%s/index.html", out);
    REQUIRE(t_sh("%s eval --size 256x192 --dataset camvid-ood:%s --methods maxlogit,energy -o %s >/dev/null 2>%s/err.txt", bin, demo, out,
                 t_tmpdir()) == 0);
    REQUIRE(exists(page));
    page_stands_alone(page, "model: espnetv2-s2.0");
    size_t n;
    char *s = t_slurp(page, &n);
    REQUIRE(s);
    CHECK(strstr(s, "loading=\"lazy\"") && strstr(s, "oodseg eval --size 256x192 --dataset"), "lazy thumbnails and the command line");
    CHECK(strstr(s, "&quot;resolved&quot;"), "the methods' resolved options are in the header");
    free(s);
    // thumbnails: per image the image and its label, per method a heat map and an overlay
    int64_t base = 0, per_method = 0;
    const char *stems[] = {"0001TP_008550", "0001TP_008610", "0001TP_008670"};
    const char *kinds[] = {"image", "label", "maxlogit_heat", "maxlogit_overlay", "energy_heat", "energy_overlay"};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 6; k++) {
            snprintf(cmd, sizeof cmd, "%s/thumbs/%s_%s.jpg", out, stems[i], kinds[k]);
            int64_t sz = file_size(cmd);
            CHECK(sz > 1000, "%s: %lld bytes", cmd, (long long)sz);
            if (k < 2) base += sz; else per_method += sz;
        }
    // RoadAnomaly-sized: 60 images x 5 methods (these 480x360 frames give larger thumbnails than its 1280x720)
    double projected = 60.0 * ((double)base / 3 + 5.0 * (double)per_method / 6);
    fprintf(stderr, "  thumbnails: %.1f KB an image, %.1f KB a method; 60 images x 5 methods: %.1f MB\n",
            (double)base / 3 / 1024, (double)per_method / 6 / 1024, projected / 1048576);
    CHECK(projected < 20e6, "thumbnails for 60 images x 5 methods would take %.1f MB", projected / 1e6);
    snprintf(cmd, sizeof cmd, "%s/screenshot.png", out);
    int rc = browser(page, 3, getenv("OODSEG_KEEP_TMP") ? cmd : NULL);
    if (rc == 77) SKIP("chromium is not installed (tools/install-deps.sh installs Debian's chromium)");
    CHECK(rc == 0, "the page failed in the browser (see above)");
}

TEST(metrics_page_without_pictures_in_a_browser) {
    char s[600], out[600], page[700];
    snprintf(s, sizeof s, "%s/scores", t_tmpdir());
    snprintf(out, sizeof out, "%s/metrics", t_tmpdir());
    snprintf(page, sizeof page, "%s/index.html", out);
    REQUIRE(t_sh("%s score --size 256x192 --method maxlogit,entropy -o %s %s/test_ood 2>/dev/null", bin, s, demo) == 0);
    REQUIRE(t_sh("%s metrics --dataset camvid-ood:%s --scores %s -o %s >/dev/null 2>&1", bin, demo, s, out) == 0);
    REQUIRE(exists(page));
    page_stands_alone(page, "model: score maps in");
    size_t n;
    char *h = t_slurp(page, &n);
    REQUIRE(h);
    CHECK(!strstr(h, "<img"), "metrics has no pictures to show");
    free(h);
    int rc = browser(page, 3, NULL);
    if (rc == 77) SKIP("chromium is not installed (tools/install-deps.sh installs Debian's chromium)");
    CHECK(rc == 0, "the page failed in the browser (see above)");
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(bin, sizeof bin, "%s", t_cli_path(argv[0]));
    if (!exists(bin)) { fprintf(stderr, "the CLI %s is not built\n", bin); return 1; }
    snprintf(root, sizeof root, "%s", bin);   // <build>/oodseg: the repository is <build>/..
    char *sl = strrchr(root, '/');
    if (sl) *sl = 0;
    strncat(root, "/..", sizeof root - strlen(root) - 1);
    snprintf(demo, sizeof demo, "%s/assets/demo", root);
    RUN(eval_page_with_thumbnails_in_a_browser);
    RUN(metrics_page_without_pictures_in_a_browser);
    return t_finish(argv[0]);
}
