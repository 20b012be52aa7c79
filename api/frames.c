// The frame stream (see frames.h): a producer thread decodes images and video frames into a ring
// of `queue` slots; the consumer takes them in order. The ring's bound is the memory bound.
#include "frames.h"
#include "../io/video.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct frame_source {
    char *const *paths;
    int n;
    frame_opts o;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    frame_item *ring;
    int cap, head, count;
    int finished, stop;
    double t_decode, t_wait;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void frame_name(const char *path, int64_t index, char *buf, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char stem[FRAME_NAME];
    snprintf(stem, sizeof stem, "%s", b);
    char *d = strrchr(stem, '.');
    if (d && d != stem) *d = 0;
    if (index < 0) snprintf(buf, n, "%s", stem);
    else snprintf(buf, n, "%.480s_f%06lld", stem, (long long)index);
}

void frame_item_free(frame_item *it) { image_free(&it->img); }

// Hands an item to the consumer, waiting for room; 1 when the consumer has stopped the source.
static int put(frame_source *s, frame_item *it) {
    pthread_mutex_lock(&s->mu);
    while (s->count == s->cap && !s->stop) pthread_cond_wait(&s->not_full, &s->mu);
    int stop = s->stop;
    if (!stop) {
        s->ring[(s->head + s->count) % s->cap] = *it;
        s->count++;
        pthread_cond_signal(&s->not_empty);
    }
    pthread_mutex_unlock(&s->mu);
    if (stop) frame_item_free(it);
    return stop;
}

static void add_decode_time(frame_source *s, double t) {
    pthread_mutex_lock(&s->mu);
    s->t_decode += t;
    pthread_mutex_unlock(&s->mu);
}

// A rank's contiguous block [lo, hi) of n things.
static void share(const frame_opts *o, int64_t n, int64_t *lo, int64_t *hi) {
    int size = o->size > 1 ? o->size : 1, r = o->size > 1 ? o->rank : 0;
    *lo = n * r / size;
    *hi = n * (r + 1) / size;
}

// Every kept frame of video i, then (when the stream ended early) its error as a last item.
static int run_video(frame_source *s, int i) {
    const char *path = s->paths[i];
    frame_item it = {0};
    video_opts vo = {s->o.every, s->o.start, s->o.end, 0, -1};
    video *v = NULL;
    double t0 = now();
    err e = {0};
    if (s->o.size > 1) {   // this rank's frame range: the count from a first look at the container
        if (video_open(path, NULL, &v, &e) == OODSEG_OK) {
            int64_t nf = video_frame_count(v), lo, hi;
            video_close(v);
            v = NULL;
            if (nf < 0) nf = 0;
            share(&s->o, nf, &lo, &hi);
            vo.first = lo;
            vo.last = s->o.rank == s->o.size - 1 ? -1 : hi;   // the last rank reads to the real end
        }
    }
    if (video_open(path, &vo, &v, &e)) {
        it.failed = 1; it.e = e; it.input = i; it.index = -1; it.source = path;
        frame_name(path, -1, it.name, sizeof it.name);
        add_decode_time(s, now() - t0);
        return put(s, &it);
    }
    double fps = video_fps(v);
    for (;;) {
        memset(&it, 0, sizeof it);
        int eof = 0;
        int rc = video_next(v, &it.img, &it.index, &eof, &it.e);
        add_decode_time(s, now() - t0);
        it.input = i; it.source = path; it.fps = fps;
        if (rc || eof) {
            if (!rc) break;
            it.failed = 1; it.end_of_input = 1;
            frame_name(path, -1, it.name, sizeof it.name);
            if (put(s, &it)) { video_close(v); return 1; }
            break;
        }
        frame_name(path, it.index, it.name, sizeof it.name);
        if (put(s, &it)) { video_close(v); return 1; }
        t0 = now();
    }
    int64_t first;
    int sk = video_skipped(v, &first);
    video_close(v);
    if (sk) {   // undecodable packets were skipped: said once, after the video's frames
        memset(&it, 0, sizeof it);
        it.failed = 1; it.end_of_input = 1; it.input = i; it.index = -1; it.source = path;
        frame_name(path, -1, it.name, sizeof it.name);
        err_set(&it.e, OODSEG_E_FORMAT, "%s: %d packet%s failed to decode (the first after frame %lld); those frames were skipped",
                path, sk, sk == 1 ? "" : "s", (long long)first - 1);
        return put(s, &it);
    }
    return 0;
}

static void *producer(void *arg) {
    frame_source *s = arg;
    int64_t n_images = 0, seen = 0, lo, hi;
    for (int i = 0; i < s->n; i++) n_images += !video_is_video_name(s->paths[i]);
    share(&s->o, n_images, &lo, &hi);
    for (int i = 0; i < s->n; i++) {
        if (video_is_video_name(s->paths[i])) {
            if (run_video(s, i)) break;
            continue;
        }
        int64_t k = seen++;
        if (k < lo || k >= hi) continue;
        frame_item it = {0};
        it.input = i; it.index = -1; it.source = s->paths[i];
        frame_name(s->paths[i], -1, it.name, sizeof it.name);
        double t0 = now();
        it.failed = image_load_rgb_mem(s->paths[i], s->o.max_memory, &it.img, &it.e) != OODSEG_OK;
        add_decode_time(s, now() - t0);
        if (put(s, &it)) break;
    }
    pthread_mutex_lock(&s->mu);
    s->finished = 1;
    pthread_cond_broadcast(&s->not_empty);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int frame_source_open(char *const *paths, int n, const frame_opts *o, frame_source **out, err *e) {
    *out = NULL;
    frame_source *s = err_calloc(e, 1, sizeof *s, "the frame reader");
    if (!s) return e->code;
    s->paths = paths;
    s->n = n;
    if (o) s->o = *o;
    s->cap = s->o.queue > 0 ? s->o.queue : 4;
    if (!(s->ring = err_calloc(e, (size_t)s->cap, sizeof *s->ring, "the frame queue"))) { free(s); return e->code; }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->not_full, NULL);
    pthread_cond_init(&s->not_empty, NULL);
    if (pthread_create(&s->th, NULL, producer, s) != 0) {
        frame_source_close(s);
        return err_set(e, OODSEG_E_NOMEM, "cannot start the decoding thread");
    }
    s->started = 1;
    *out = s;
    return OODSEG_OK;
}

int frame_source_next(frame_source *s, frame_item *it) {
    double t0 = now();
    pthread_mutex_lock(&s->mu);
    while (s->count == 0 && !s->finished) pthread_cond_wait(&s->not_empty, &s->mu);
    int end = s->count == 0;
    if (!end) {
        *it = s->ring[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        pthread_cond_signal(&s->not_full);
    }
    s->t_wait += now() - t0;
    pthread_mutex_unlock(&s->mu);
    return end;
}

void frame_source_times(const frame_source *s, double *decoding, double *waiting) {
    frame_source *m = (frame_source *)s;   // the lock is the only thing changed
    pthread_mutex_lock(&m->mu);
    if (decoding) *decoding = s->t_decode;
    if (waiting) *waiting = s->t_wait;
    pthread_mutex_unlock(&m->mu);
}

void frame_source_close(frame_source *s) {
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->not_full);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    for (int k = 0; k < s->count; k++) frame_item_free(&s->ring[(s->head + k) % s->cap]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->not_full);
    pthread_cond_destroy(&s->not_empty);
    free(s->ring);
    free(s);
}
