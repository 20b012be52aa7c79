// `oodseg score`'s resumable state: OUT/.oodseg-score-state.json, written when a run is
// interrupted, lists the inputs, the options that decide the outputs and the images whose every
// output was written. `--resume` reads it back, refuses it when the options or the inputs differ
// (a resumed run must give the files an uninterrupted one would), and skips the images listed.
#ifndef OODSEG_CLI_SCORE_STATE_H
#define OODSEG_CLI_SCORE_STATE_H

#include "../core/err.h"

#define SCORE_STATE_FILE ".oodseg-score-state.json"

typedef struct score_state {
    char path[4400];
    const char *options;       // "key=value;..." of what decides the outputs (the caller's)
    char *const *inputs;       // the caller's input list
    int n_inputs;
    char **done;               // names whose outputs are all written: [0, n_loaded) sorted, then new ones
    int n_done, n_loaded, cap;
} score_state;

// A state for dir (nothing read yet).
void score_state_init(score_state *st, const char *dir, const char *options, char *const *inputs, int n_inputs);
// --resume: reads the state file; OODSEG_E_ARG naming what differs when the options or inputs are
// not those of the interrupted run, or when there is no state file.
int score_state_load(score_state *st, err *e);
// 1 when name was finished by the interrupted run.
int score_state_was_done(const score_state *st, const char *name);
// Records a finished name (not twice). 0, or OODSEG_E_NOMEM.
int score_state_add(score_state *st, const char *name);
// Writes the file (temporary name + rename).
int score_state_save(const score_state *st, err *e);
// Removes the file (a run that finished).
void score_state_remove(const score_state *st);
void score_state_free(score_state *st);

#endif
