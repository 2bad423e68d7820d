/*
 * fdatasync with a deadline for the caller: one thread per WAL runs the sync; the caller
 * (the event loop's thread) waits for it at most a budget of milliseconds. Done in time, the
 * write is durable when the call returns, as a blocking fdatasync would leave it, at the cost
 * of two thread wake-ups. Not done in time, the caller returns at the deadline and the sync
 * goes on: its outcome reaches JavaScript later, on the loop, through the `late` callback.
 *
 * This is what no JavaScript API can do: a syscall cannot be cut short, and node:fs's
 * asynchronous fdatasync reports back only through a turn of the loop, never to a waiting
 * caller. A worker thread could (Atomics.wait), but an isolate costs ~8 MiB of RSS.
 *
 * One sync at a time per Syncer (the WAL serializes its syncs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <node_api.h>

typedef struct {
  pthread_t thread;
  pthread_mutex_t mu;
  int posted[2];           /* a pipe: one byte per sync asked for, or one with none asked: stop */
  int finished[2];         /* a pipe: one byte per sync done that the caller still waits for */
  int fd;
  uint64_t asked;          /* syncs asked for */
  uint64_t done;           /* syncs done (done == asked: idle) */
  int err;                 /* errno of the last sync done (0: none) */
  int abandoned;           /* the caller stopped waiting: report the outcome through `late` */
  int stopped;             /* joined; the thread no longer exists */
  int owners;              /* the JavaScript handle and the threadsafe function: freed at 0 */
  int late_gone;           /* the threadsafe function was finalized (at the env's teardown, say) */
  napi_threadsafe_function late;
} Syncer;

/* The two threads wake each other through pipes: a pipe's wake-up is a "sync" one (the woken
   thread tends to run on the waker's CPU, which is about to sleep), a condition variable's
   futex gives no such hint. bench/loop-stalls --clients 1, put-1 req/s: with a condition
   variable 2,639 and 2,582 against 3,129 and 2,797 blocking; with pipes 2,363 and 3,217
   against 2,380 and 3,189. */
static void write_byte(int fd) {
  char b = 1;
  while (write(fd, &b, 1) < 0 && errno == EINTR) {
  }
}

static void read_byte(int fd) {
  char b;
  while (read(fd, &b, 1) < 0 && errno == EINTR) {
  }
}

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "sync_within: " #call " failed");      \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static void *run(void *arg) {
  Syncer *s = arg;
  /* The loop's thread waits on this one: the server keeps it at the main thread's priority,
     not its helpers' (cli/thread-priority.ts), by this name (at most 15 characters). */
  pthread_setname_np(pthread_self(), "concord-walsync");
  for (;;) {
    char b;
    ssize_t n = read(s->posted[0], &b, 1);
    if (n < 0 && errno == EINTR) continue;
    pthread_mutex_lock(&s->mu);
    if (n != 1 || s->done == s->asked) { /* stop() (or the pipe failed: stop too) */
      pthread_mutex_unlock(&s->mu);
      break;
    }
    int fd = s->fd;
    pthread_mutex_unlock(&s->mu);
    int err = fdatasync(fd) == 0 ? 0 : errno;
    pthread_mutex_lock(&s->mu);
    s->err = err;
    s->done = s->asked;
    int report = s->abandoned;
    s->abandoned = 0;
    /* Under the lock: a caller that sees `done` after its deadline finds the byte there. */
    if (!report) write_byte(s->finished[1]);
    pthread_mutex_unlock(&s->mu);
    if (report) napi_call_threadsafe_function(s->late, (void *)(intptr_t)err, napi_tsfn_nonblocking);
  }
  return NULL;
}

/* On the loop's thread: the late sync's errno to the JavaScript callback. */
static void call_late(napi_env env, napi_value cb, void *context, void *data) {
  Syncer *s = context;
  if (env == NULL || cb == NULL) return;
  napi_unref_threadsafe_function(env, s->late); /* nothing in flight holds the loop open */
  napi_value undef, arg;
  if (napi_get_undefined(env, &undef) != napi_ok) return;
  if (napi_create_int32(env, (int32_t)(intptr_t)data, &arg) != napi_ok) return;
  napi_call_function(env, undef, cb, 1, &arg, NULL);
}

static void stop(Syncer *s) {
  if (s->stopped) return;
  write_byte(s->posted[1]); /* a byte with no sync asked for: the thread ends */
  pthread_join(s->thread, NULL); /* waits for a sync in flight to finish */
  s->stopped = 1;
  if (!s->late_gone) napi_release_threadsafe_function(s->late, napi_tsfn_release);
}

/* Both owners (the handle, the threadsafe function) are finalized on the loop's thread. */
static void disown(Syncer *s) {
  if (--s->owners > 0) return;
  pthread_mutex_destroy(&s->mu);
  close(s->posted[0]);
  close(s->posted[1]);
  close(s->finished[0]);
  close(s->finished[1]);
  free(s);
}

/*
 * The threadsafe function is gone: after stop() released it, or first, when the env is torn
 * down (then the thread is stopped here, before it could call a function that is no more).
 */
static void finalize_late(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Syncer *s = data;
  s->late_gone = 1;
  stop(s);
  disown(s);
}

/* The JavaScript handle was collected (close() may or may not have stopped it already). */
static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  stop(data);
  disown(data);
}

static Syncer *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "sync_within: not a syncer");
    return NULL;
  }
  return p;
}

/* open(late: (errno: number) => void): a syncer with its thread started. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name, handle;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_create_string_utf8(env, "concord wal sync", NAPI_AUTO_LENGTH, &name));
  Syncer *s = calloc(1, sizeof *s);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "sync_within: out of memory");
    return NULL;
  }
  if (pipe2(s->posted, O_CLOEXEC) != 0) {
    free(s);
    napi_throw_error(env, NULL, "sync_within: pipe2 failed");
    return NULL;
  }
  if (pipe2(s->finished, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(s->posted[0]);
    close(s->posted[1]);
    free(s);
    napi_throw_error(env, NULL, "sync_within: pipe2 failed");
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, s, finalize_late, s, call_late, &s->late) != napi_ok) {
    free(s);
    napi_throw_type_error(env, NULL, "sync_within: open(late) needs a function");
    return NULL;
  }
  s->owners = 1; /* the threadsafe function; the handle below is the second */
  napi_unref_threadsafe_function(env, s->late);
  pthread_attr_t ta;
  pthread_attr_init(&ta);
  pthread_attr_setstacksize(&ta, 64 * 1024);
  int rc = pthread_create(&s->thread, &ta, run, s);
  pthread_attr_destroy(&ta);
  if (rc != 0) {
    s->stopped = 1;
    napi_release_threadsafe_function(s->late, napi_tsfn_release); /* frees s */
    napi_throw_error(env, NULL, "sync_within: cannot start the sync thread");
    return NULL;
  }
  s->owners++;
  if (napi_create_external(env, s, finalize_handle, NULL, &handle) != napi_ok) {
    finalize_handle(env, s, NULL);
    napi_throw_error(env, NULL, "sync_within: napi_create_external failed");
    return NULL;
  }
  return handle;
}

/*
 * syncWithin(syncer, fd, budgetMs): 0 when fd was synced within the budget, an errno (> 0)
 * when that sync failed, -1 when it is still running at the deadline (late gets its errno).
 */
static napi_value js_sync_within(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Syncer *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int32_t fd;
  double budget_ms;
  if (argc < 3 || napi_get_value_int32(env, argv[1], &fd) != napi_ok || napi_get_value_double(env, argv[2], &budget_ms) != napi_ok) {
    napi_throw_type_error(env, NULL, "sync_within: syncWithin(syncer, fd, budgetMs)");
    return NULL;
  }
  if (s->stopped) {
    napi_throw_error(env, NULL, "sync_within: syncer closed");
    return NULL;
  }
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long long budget_ns = budget_ms > 0 ? (long long)(budget_ms * 1e6) : 0;

  pthread_mutex_lock(&s->mu);
  if (s->done != s->asked) {
    pthread_mutex_unlock(&s->mu);
    napi_throw_error(env, NULL, "sync_within: a sync is already in flight");
    return NULL;
  }
  s->fd = fd;
  s->asked++;
  pthread_mutex_unlock(&s->mu);
  write_byte(s->posted[1]);

  struct pollfd pfd = {.fd = s->finished[0], .events = POLLIN};
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = budget_ns - ((now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec));
    if (left < 0) left = 0;
    struct timespec timeout = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
    int r = ppoll(&pfd, 1, &timeout, NULL);
    if (r >= 0 || errno != EINTR) break; /* done, the deadline, or a poll failure (then: late) */
  }
  int result;
  pthread_mutex_lock(&s->mu);
  if (s->done == s->asked) {
    read_byte(s->finished[0]); /* written under the lock: it is there */
    result = s->err;
  } else {
    s->abandoned = 1;
    result = -1;
  }
  pthread_mutex_unlock(&s->mu);
  /* A late outcome is on its way: it holds the loop open until it arrives (call_late unrefs). */
  if (result == -1) napi_ref_threadsafe_function(env, s->late);
  CHECK(env, napi_create_int32(env, result, &out));
  return out;
}

/* close(syncer): waits for a sync in flight, then ends the thread. Idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Syncer *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  stop(s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"syncWithin", NULL, js_sync_within, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
