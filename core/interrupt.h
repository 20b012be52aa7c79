// Interrupting a long run cleanly. A job (score, eval, mine) polls a cancel flag between images:
// when it is set, the job finishes or abandons the current image, writes its resumable state and
// returns OODSEG_E_INTERRUPTED-like codes chosen by the caller. The library never installs a
// signal handler itself (that would change the host process behind its back): the CLI does, with
// interrupt_install, and passes interrupt_flag() to the job.
//
// Every output file lives under a temporary name until it is complete (core/outfile.c), and each
// live temporary name is recorded here, so that a second SIGINT can remove them all and exit at
// once, leaving no partial file. The record is lock-free (a fixed table of slots claimed with
// atomics) because a signal handler reads it.
#ifndef OODSEG_CORE_INTERRUPT_H
#define OODSEG_CORE_INTERRUPT_H

#include <signal.h>

// The flag the handler sets: 0, or the number of the first signal received (SIGINT, SIGTERM).
const volatile sig_atomic_t *interrupt_flag(void);

// Installs SIGINT and SIGTERM handlers (CLI only). The first signal sets the flag and prints a
// line saying the run will stop after the current image; the second removes every live temporary
// output file and exits with 128 + the signal's number.
void interrupt_install(void);

// For tests: sets the flag as the first signal would (0 clears it).
void interrupt_raise_for_test(int signo);

// The temporary-name record used by core/outfile.c. interrupt_track returns a slot (-1 when the
// table is full: the file is then only cleaned up by the normal paths); interrupt_untrack frees it.
int interrupt_track(const char *tmp_path);
void interrupt_untrack(int slot);

// Removes every tracked temporary file. Async-signal-safe.
void interrupt_remove_temps(void);

#endif
