/* Loaded with LD_PRELOAD: moves the wall clock of one process by CLOCK_SHIFT_SECONDS, so a test
 * can run a real redis-server whose clock is behind the host's (a clock step or a failover to a
 * host with another clock: nothing else on one machine produces that). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long shift_seconds(void) {
  static long shift = -1;
  static int known = 0;
  if (!known) {
    const char *text = getenv("CLOCK_SHIFT_SECONDS");
    shift = text ? strtol(text, NULL, 10) : 0;
    known = 1;
  }
  return shift;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  static int (*real)(struct timeval *, void *);
  if (!real) real = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
  int result = real(tv, tz);
  if (result == 0) tv->tv_sec += shift_seconds();
  return result;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  static int (*real)(clockid_t, struct timespec *);
  if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
  int result = real(id, ts);
  if (result == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift_seconds();
  return result;
}
