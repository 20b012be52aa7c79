// Shard states: the pooled scores of one or more methods written to a file, so that a dataset can
// be evaluated in pieces (on several machines) and merged to exactly the single-pass metrics.
//
// A state file holds, after a header (a magic, a version, the section count and a free-form JSON
// metadata string), one section per method: its name, its positive and negative counts, and its
// sorted runs (distinct score, n_pos, n_neg), descending, compactly (LEB128 key step + two LEB128
// counts a run). Merging states sums the counts per distinct score, so the merged metrics are
// exactly those of a single pass over all pixels.
#ifndef OODSEG_EVAL_MSTATE_H
#define OODSEG_EVAL_MSTATE_H

#include <stddef.h>
#include "metrics.h"

#define MSTATE_MAX_SECTIONS 16
#define MSTATE_NAME 32

// Sorts each accumulator (they stay usable) and writes the file (atomically: a temporary name,
// then renamed).
int mstate_save(const char *path, const char *meta_json, int n_sections,
                const char *const *names, macc *const *accs, err *e);
// Merges n_paths state files (same section names, same order) and computes each section's
// metrics; save_path (or NULL) receives the merged state. meta receives the first file's metadata.
int mstate_merge(const char *const *paths, int n_paths, fpr_conv conv, int want_curve,
                 const char *save_path, int *n_sections, char names[][MSTATE_NAME],
                 metrics_result *results, char *meta, size_t meta_cap, err *e);
// The same, with save_meta (NULL: the first file's metadata) in the merged state's header.
int mstate_merge_as(const char *const *paths, int n_paths, fpr_conv conv, int want_curve,
                    const char *save_path, const char *save_meta, int *n_sections, char names[][MSTATE_NAME],
                    metrics_result *results, char *meta, size_t meta_cap, err *e);
// Reads only the metadata string of a state file (e.g. to add up the shards' image counts).
int mstate_read_meta(const char *path, char *meta, size_t meta_cap, err *e);

#endif
