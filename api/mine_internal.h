// What api/mine.c and api/mine_rank.c share: the K-best heap, the per-frame log's lines, and the
// final ranking.
#ifndef OODSEG_API_MINE_INTERNAL_H
#define OODSEG_API_MINE_INTERNAL_H

#include "mine.h"

typedef struct mine_entry {
    double v;                // the ranking score
    int input;
    int64_t index;
    char name[FRAME_NAME];
    mine_scores s;
} mine_entry;

typedef struct mine_top { mine_entry *e; int n, k; } mine_top;

// a ranks above b: higher score, then earlier input, then earlier frame.
int mine_better(const mine_entry *a, const mine_entry *b);
int mine_top_offer(mine_top *t, const mine_entry *x, mine_entry *evicted);
void mine_top_sort(mine_top *t);   // best first

void mine_log_path(const char *dir, int rank, int size, char *buf, size_t n);
void mine_log_header(const pipeline *p, const mine_opts *o, int n_inputs, char *buf, size_t n);
// 0 and *ok 1 (x filled) or 0 (a failure line); -1 for a damaged line.
int mine_parse_line(char *line, mine_rank_by by, mine_entry *x, int *ok);
void mine_remove_top(const char *dir, const char *method, const char *name);

// Rank 0, after every rank's share: the global K best from every rank's log, DIR/top/ pruned to
// them, DIR/ranking.csv and DIR/index.html (api/mine_rank.c).
int mine_finish(const dist *d, const pipeline *p, char *const *inputs, int n_inputs, const mine_opts *o,
                mine_summary *s, err *e);

#endif
