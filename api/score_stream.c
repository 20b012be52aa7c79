// `oodseg score` over images and videos (see score_stream.h), in four stages: the decoding
// thread (api/frames.c), the network on the forward threads (below), the methods on the calling
// thread, and a writer thread that encodes and writes each frame's score maps and pictures.
// Encoding 1280x720 pictures costs as much as the network, so without the writer the network sat
// idle for most of each image.
//
// The writer owns what it is given: each job holds its frame's image and pipeline_out (heap
// buffers, not the model's arena), and the writer reads nothing of the pipeline that the network
// changes (the method names and options, the model's palette and class names, the scale). Jobs
// are written in order by the one writer and reported back on the calling thread in order, so the
// callbacks see exactly the sequence of a one-thread run. The ring of `queue` jobs bounds memory.
//
// Threads: the network keeps its --threads N (on one forward thread with N OpenMP threads, or on
// several with their share, below) and the writer is one more thread at the normal priority, its
// encoders single-threaded. On a 2-core machine with N = 2 the three compete, but the writer's
// work (CPU seconds per 1280x720 image with maxlogit,kmeans, from the process's user time with and
// without pictures: PNG 0.21, WebP 0.18, JPEG 0.08, against 0.5 for the network and the rest on
// that loaded machine; PNG about 0.08 since io/png_write.c, from bench/bench_pictures.c's times)
// is below the network's, so on two cores it can hide behind it. A lower priority for the writer
// was not measured on a quiet machine (bench/bench_score.sh is where to compare): when the queue
// is full the network blocks, and its passive OpenMP threads leave the cores to the writer.
#include "score_stream.h"
#include "../io/video.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// The open overlay video of one input.
typedef struct overlay_out { video_writer *vw; int input; } overlay_out;

static int overlay_add(overlay_out *ov, const pipeline *p, const frame_item *it, const pipeline_out *po,
                       const char *dir, err *e) {
    pictures_in in;
    char rule[160];
    image heat = {0}, over = {0};
    pipeline_pictures_in(p, &it->img, po, 0, &in, rule, sizeof rule);
    int rc = pictures_heat(&in, &heat, &over, e);
    if (!rc && ov->vw && ov->input != it->input) {
        rc = video_writer_close(ov->vw, 1, e);
        ov->vw = NULL;
    }
    if (!rc && !ov->vw) {
        char stem[FRAME_NAME], path[4400];
        frame_name(it->source, -1, stem, sizeof stem);
        snprintf(path, sizeof path, "%s/%s_overlay.mp4", dir, stem);
        rc = video_writer_open(path, over.w, over.h, it->fps, &ov->vw, e);
        ov->input = it->input;
    }
    if (!rc) rc = video_writer_add(ov->vw, &over, e);
    image_free(&heat);
    image_free(&over);
    return rc;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// One scored frame on its way to the files.
typedef struct job {
    frame_item it;       // owns the image
    pipeline_out po;     // owns the maps
    int bad;             // the frame failed before the writer (it.e says why): nothing to write
    int skipped;         // done by an earlier run (o->skip): nothing to write, only reported in order
    int rc;              // the writer's result
    int abandoned;       // not written: an earlier job's write failed and the run stops
    err e;
} job;

typedef struct writer {
    const pipeline *p;
    const score_stream_opts *o;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *ring;
    long cap;
    long submitted, written, reported;   // job counts: reported <= written <= submitted <= reported + cap
    int quit;
    int failed;          // writer's own: a write failed, later jobs are abandoned
    overlay_out ov;      // the writer's own
    double t_write;
} writer;

static int write_job(writer *w, job *j) {
    const score_stream_opts *o = w->o;
    int rc = pipeline_save_with(w->p, &j->it.img, &j->po, o->dir, j->it.name, &o->save, &j->e);
    if (!rc && o->video_out && j->it.index >= 0) rc = overlay_add(&w->ov, w->p, &j->it, &j->po, o->dir, &j->e);
    return rc;
}

static void *writer_main(void *arg) {
    writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->written == w->submitted && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (w->written == w->submitted) break;
        job *j = &w->ring[w->written % w->cap];
        pthread_mutex_unlock(&w->mu);
        double t0 = now();
        if (j->bad || j->skipped) {}
        else if (w->failed) j->abandoned = 1;
        else if ((j->rc = write_job(w, j))) w->failed = 1;
        pipeline_out_free(&j->po);   // the maps are written: free them now, not when reported
        frame_item_free(&j->it);
        pthread_mutex_lock(&w->mu);
        w->t_write += now() - t0;
        w->written++;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

// Reports the written jobs in order (all of them when wait_all, after waiting for the writer;
// else those written so far); sets *rc and e from the first that stops the run.
static void report_written(writer *w, int wait_all, score_stream_summary *s, int *rc, err *e) {
    const score_stream_opts *o = w->o;
    double t0 = now();
    pthread_mutex_lock(&w->mu);
    while (wait_all && w->written < w->submitted) pthread_cond_wait(&w->cv, &w->mu);
    long upto = w->written;
    pthread_mutex_unlock(&w->mu);
    s->seconds_write_wait += now() - t0;
    for (; w->reported < upto; w->reported++) {
        job *j = &w->ring[w->reported % w->cap];
        if (j->abandoned) continue;   // after a failed write: never written, never counted, as if not taken
        if (j->skipped) s->skipped++;
        else if (j->bad) {
            if (!s->failed++) s->first_failure = j->it.e;
            if (!o->keep_going) { if (!*rc) { *e = j->it.e; *rc = e->code; } }
            else if (o->on_fail) o->on_fail(o->ctx, j->it.name, &j->it.e);
        } else if (j->rc) {
            if (!*rc) { *e = j->e; *rc = j->rc; }
        } else {
            s->done++;
            if (o->on_saved) o->on_saved(o->ctx, j->it.name);
        }
        if (o->on_frame) o->on_frame(o->ctx, j->it.name, s->done + s->failed + s->skipped);
    }
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

// Hands a job to the writer, first waiting for a free slot (reporting what is written meanwhile).
static void submit(writer *w, job *j, score_stream_summary *s, int *rc, err *e) {
    pthread_mutex_lock(&w->mu);
    while (w->submitted - w->reported >= w->cap) {
        if (w->written > w->reported) {   // a slot is done: report it to free it
            pthread_mutex_unlock(&w->mu);
            report_written(w, 0, s, rc, e);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        double t0 = now();
        pthread_cond_wait(&w->cv, &w->mu);
        s->seconds_write_wait += now() - t0;
    }
    w->ring[w->submitted % w->cap] = *j;
    w->submitted++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int writer_start(writer *w, const pipeline *p, const score_stream_opts *o, err *e) {
    memset(w, 0, sizeof *w);
    w->p = p;
    w->o = o;
    w->cap = o->queue > 0 ? o->queue : 2;
    w->ov = (overlay_out){NULL, -1};
    if (!(w->ring = err_calloc(e, (size_t)w->cap, sizeof *w->ring, "the writer's queue"))) return e->code;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, writer_main, w)) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->ring);
        return err_set(e, OODSEG_E_INTERNAL, "cannot start the writer thread");
    }
    return OODSEG_OK;
}

// Every job written and reported, then the thread joined. Returns the overlay video to close.
static video_writer *writer_stop(writer *w, score_stream_summary *s, int *rc, err *e) {
    report_written(w, 1, s, rc, e);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    s->seconds_write = w->t_write;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->ring);
    return w->ov.vw;
}

// ---- the forward threads -----------------------------------------------------------------------
// The network runs on forward threads, ahead of the methods: while the calling thread runs the
// methods of frame i, the forward threads run the next frames. The calling thread still pulls the
// frames, decides skips and reports, so every callback stays on it and in order; results are the
// same bits, since every stage runs the same code and results do not depend on thread counts.
//
// How many forward threads: one with the model's threads, or, for a small model that can share
// its weights (model_twin), one per thread up to FWD_MAX, each on a twin with its share of the
// threads, and the methods on a twin too. ESPNetv2's forward is some 250 short parallel regions:
// on 2 threads each pays a wake-up (about 40 us on the 2-core VM of BENCHMARKS.md) and its load
// imbalance, so 2 threads finish one frame in 0.6 of the 1-thread time; two frames on one thread
// each keep both cores busy instead. A frame is taken by whichever forward thread is free; frames
// are handed to the methods in order. At most `ahead` frames are posted and not taken.
#define FWD_MAX 4
#define FWD_RING (2 * FWD_MAX)
#define FWD_TWIN_MAX_PARAMS 16000000   // weights small enough to share (64 MB of fp32): the arenas
                                       // and the frames in flight, not the weights, set the memory

typedef struct fwd_item { job j; tensor_list tl; int done; } fwd_item;

typedef struct forwarder forwarder;
typedef struct fwd_worker { forwarder *f; pipeline p; model *twin; pthread_t th; int started, adopted; } fwd_worker;

// The lead: with twins, the first frame that has a forward runs on the model itself with all its
// threads while the other forward threads wait. A lone image then gets every core, and every twin
// starts from the plan of the model's arena (model_twin_adopt_plan) instead of mapping the blocks
// of an unplanned first forward of its own. It runs on a forward thread, so that its memory comes
// back to that thread's later frames.
enum { LEAD_NONE, LEAD_WAIT, LEAD_RUNNING, LEAD_DONE };

struct forwarder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fwd_item ring[FWD_RING];
    long posted, claimed, taken;   // taken <= claimed <= posted <= taken + ahead
    int ahead, nw, quit;
    int lead_state;                // LEAD_*
    int adopted;                   // twins that took the model's plan
    pipeline lead;                 // the pipeline on the model itself (LEAD_WAIT: twins)
    fwd_worker w[FWD_MAX];
    model *scorer;                 // the methods' twin (their threads), or NULL: the pipeline's model
};

// The network's part of a frame that is neither skipped nor failed: its outputs into tl.
static void forward_job(pipeline *p, job *j, tensor_list *tl) {
    *tl = (tensor_list){0};
    if (!j->skipped && !j->bad && (j->bad = pipeline_forward(p, &j->it.img, tl, &j->po, &j->it.e)))
        err_prefix(&j->it.e, "%s: ", j->it.name);
}

static void forward_lead(forwarder *f, fwd_item *x) {
#ifdef __SANITIZE_THREAD__
    // ThreadSanitizer does not see libgomp's barriers (Makefile, test-tsan): there the lead runs
    // on one OpenMP thread, as every other forward of the test does. The same bits. (The model is
    // not used by any other thread meanwhile.)
    const int threads = f->lead.m->ctx.threads;
    f->lead.m->ctx.threads = 1;
    forward_job(&f->lead, &x->j, &x->tl);
    f->lead.m->ctx.threads = threads;
#else
    forward_job(&f->lead, &x->j, &x->tl);
#endif
}

static void *forwarder_main(void *arg) {
    fwd_worker *me = arg;
    forwarder *f = me->f;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while ((f->claimed == f->posted || f->lead_state == LEAD_RUNNING) && !f->quit)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->claimed == f->posted) break;
        fwd_item *x = &f->ring[f->claimed++ % FWD_RING];
        const int lead = f->lead_state == LEAD_WAIT && !x->j.skipped && !x->j.bad;
        const int adopt = !lead && !me->adopted && f->lead_state == LEAD_DONE;
        if (lead) f->lead_state = LEAD_RUNNING;
        pthread_mutex_unlock(&f->mu);
        const int took = adopt && model_twin_adopt_plan(me->twin);   // (the model is done with)
        if (lead) forward_lead(f, x);
        else forward_job(&me->p, &x->j, &x->tl);
        pthread_mutex_lock(&f->mu);
        me->adopted |= adopt;
        f->adopted += took;
        if (lead) f->lead_state = LEAD_DONE;
        x->done = 1;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

// The forward threads for p: one per core up to FWD_MAX, each on a twin with its share of the
// threads, when the model is small and there are 2 cores or more; else one, on the model itself,
// also when model_twin refuses the model (not shareable, bf16) or cannot make a twin.
static int forwarder_plan(forwarder *f, pipeline *p) {
    const model *m = p->m;
    const int threads = m->ctx.threads, nw = threads < FWD_MAX ? threads : FWD_MAX, each = threads / nw;
    if (nw < 2 || m->desc.num_params > FWD_TWIN_MAX_PARAMS) return 1;
    err ignore = {0};
    int made = 0;
    while (made < nw && !model_twin(m, each, &f->w[made].twin, &ignore)) made++;
    if (made == nw && !model_twin(m, each, &f->scorer, &ignore)) {
        for (int i = 0; i < nw; i++) {
            f->w[i].p = *p;
            f->w[i].p.m = f->w[i].twin;
            f->w[i].p.owns_model = 0;
        }
        return nw;
    }
    for (int i = 0; i < made; i++) model_close(f->w[i].twin), f->w[i].twin = NULL;
    return 1;
}

static void forwarder_stop(forwarder *f);

static int forwarder_start(forwarder *f, pipeline *p, err *e) {
    memset(f, 0, sizeof *f);
    f->nw = forwarder_plan(f, p);
    if (f->nw == 1) f->w[0].p = *p;
    else f->lead = *p, f->lead_state = LEAD_WAIT;
    f->ahead = f->nw + 1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    for (int i = 0; i < f->nw; i++) {
        f->w[i].f = f;
        if (pthread_create(&f->w[i].th, NULL, forwarder_main, &f->w[i])) {
            forwarder_stop(f);
            return err_set(e, OODSEG_E_INTERNAL, "cannot start a forward thread");
        }
        f->w[i].started = 1;
    }
    return OODSEG_OK;
}

static void forwarder_post(forwarder *f, const job *j) {
    pthread_mutex_lock(&f->mu);
    fwd_item *x = &f->ring[f->posted % FWD_RING];
    x->j = *j;
    x->done = 0;
    f->posted++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

// The oldest posted frame once its forward is done: the job and its network outputs.
static void forwarder_take(forwarder *f, job *j, tensor_list *tl, double *wait) {
    double t0 = now();
    pthread_mutex_lock(&f->mu);
    fwd_item *x = &f->ring[f->taken % FWD_RING];
    while (!x->done) pthread_cond_wait(&f->cv, &f->mu);
    *j = x->j, *tl = x->tl;
    x->done = 0;
    f->taken++;
    pthread_mutex_unlock(&f->mu);
    *wait += now() - t0;
}

// Waits for the frames still in flight, drops them (not written, not reported), joins the threads
// and closes the twins.
static void forwarder_stop(forwarder *f) {
    double unused = 0;
    while (f->taken < f->posted) {
        job j;
        tensor_list tl;
        forwarder_take(f, &j, &tl, &unused);
        tl_free(&tl);
        pipeline_out_free(&j.po);
        frame_item_free(&j.it);
    }
    pthread_mutex_lock(&f->mu);
    f->quit = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->nw; i++) if (f->w[i].started) pthread_join(f->w[i].th, NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    for (int i = 0; i < f->nw; i++) model_close(f->w[i].twin);
    model_close(f->scorer);
}

// A pulled frame as a job: skipped when an earlier run did it (its image freed; it is reported
// through the queue, in order), bad when it could not be read.
static void frame_job(job *j, const score_stream_opts *o) {
    j->skipped = !j->it.failed && o->skip && o->skip(o->ctx, j->it.name);
    if (j->skipped) image_free(&j->it.img);
    j->bad = j->it.failed ? j->it.e.code : OODSEG_OK;
}

int score_stream(pipeline *p, char *const *paths, int n, const score_stream_opts *o, score_stream_summary *s, err *e) {
    memset(s, 0, sizeof *s);
    frame_source *src;
    writer w;
    frame_opts fo = o->frames;
    fo.max_memory = p->m->max_memory;
    if (frame_source_open(paths, n, &fo, &src, e)) return e->code;
    if (writer_start(&w, p, o, e)) { frame_source_close(src); return e->code; }
    int last = 0, eof = 0;
    forwarder f;
    int rc = forwarder_start(&f, p, e);
    if (rc) {
        writer_stop(&w, s, &rc, e);
        frame_source_close(src);
        return rc;
    }
    // the methods run on the scorer twin's threads when the forwards run on twins
    pipeline ps = *p;
    if (f.scorer) ps.m = f.scorer, ps.owns_model = 0;
    ps.no_class_maps = o->save.pictures == PICTURES_NONE;   // (the overlay video needs neither)
    s->forward_threads = f.nw;
    while (!rc && !last) {
        int cancel = o->cancel && *o->cancel;
        while (!cancel && !eof && f.posted - f.taken < f.ahead) {   // only this thread posts
            job j = {0};
            if (frame_source_next(src, &j.it)) { eof = 1; break; }
            frame_job(&j, o);
            forwarder_post(&f, &j);
        }
        if (cancel) { s->interrupted = 1; break; }
        if (f.taken == f.posted) break;   // every frame is through
        job j;
        tensor_list tl;
        forwarder_take(&f, &j, &tl, &s->seconds_forward_wait);
        // pipeline_score frees tl; a skipped or failed frame's tl is empty
        if (!j.skipped && !j.bad && (j.bad = pipeline_score(&ps, &tl, &j.po, &j.it.e))) err_prefix(&j.it.e, "%s: ", j.it.name);
        s->seconds_network += j.po.seconds_forward + j.po.seconds_methods;
        last = j.bad && !o->keep_going;   // it stops the run once the frames before it are written
        submit(&w, &j, s, &rc, e);
        report_written(&w, 0, s, &rc, e);
    }
    s->twins_from_plan = f.adopted;
    forwarder_stop(&f);
    video_writer *vw = writer_stop(&w, s, &rc, e);
    frame_source_times(src, &s->seconds_decode, &s->seconds_wait);
    frame_source_close(src);
    // An interrupted video's overlay would be cut short: it is removed like a failed one.
    int rc2 = video_writer_close(vw, rc == OODSEG_OK && !s->interrupted, rc ? NULL : e);
    if (!rc && !rc2 && s->interrupted)
        rc = err_set(e, OODSEG_E_INTERRUPTED, "interrupted after %d of the frames (%d written)", s->done + s->failed + s->skipped, s->done);
    return rc ? rc : rc2;
}
