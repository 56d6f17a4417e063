/* exec — subprocesses for tools, without blocking the scheduler.
 *
 * moonspan._exec_start(argv, stdin, timeout_ms) spawns argv (posix_spawnp,
 * so argv[1] is looked up on PATH) with its stdin, stdout and stderr on
 * non-blocking pipes and returns a handle. h:done() moves whatever the
 * pipes have ready (stdin in, stdout and stderr out), reaps the child
 * when it has exited and kills it past its deadline, never waiting:
 * the scheduler calls it between other tasks. h:wait() does the same in a
 * poll() loop, for callers outside a task. h:result() gives {status,
 * signal, stdout, stderr, timed_out, elapsed_ms}. A handle collected
 * or closed while the child runs kills and reaps it, so an interrupted
 * run leaves no process behind. moonspan.exec (scripts/sched.lua) is the
 * function scripts call. */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "ms_buf.h"
#include "ms_clock.h"

#define EXEC_MT "moonspan.exec"
#define MAX_ARGS 4096
#define NS_PER_MS 1000000LL
#define GRACE_NS (1000 * NS_PER_MS) /* SIGTERM, then SIGKILL this much later */

extern char **environ;

typedef struct proc {
    pid_t pid;              /* 0 once reaped (or never started) */
    int in, out, err;       /* our ends of the pipes; -1 when closed */
    const char *stdin_data; /* kept alive by the handle's user value */
    size_t stdin_len, stdin_off;
    ms_buf stdout_buf, stderr_buf;
    int64_t start, deadline; /* monotonic ns; deadline 0: none */
    int64_t end;             /* monotonic ns it was found to have exited */
    int64_t killed_at;       /* when SIGTERM was sent for the timeout; 0: not */
    int status;              /* waitpid status, once reaped */
    int reaped, timed_out;
} proc;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reads what fd has ready into b; closes fd at end of file or on error. */
static void drain(int *fd, ms_buf *b)
{
    char chunk[16384];
    while (*fd >= 0) {
        ssize_t n = read(*fd, chunk, sizeof chunk);
        if (n > 0) {
            ms_buf_add(b, chunk, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                close_fd(fd);
            return;
        }
    }
}

/* Writes what the child's stdin takes now. A child that exits without
 * reading it all closes the pipe: SIGPIPE is held back for this thread
 * during the write and the pending one taken, so the host lives on. */
static void feed(proc *p)
{
    if (p->in < 0)
        return;
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    while (p->stdin_off < p->stdin_len) {
        ssize_t n = write(p->in, p->stdin_data + p->stdin_off, p->stdin_len - p->stdin_off);
        if (n > 0) {
            p->stdin_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n < 0 && errno == EPIPE) {
                struct timespec zero = {0, 0};
                sigtimedwait(&pipe_set, NULL, &zero);
                p->stdin_off = p->stdin_len; /* the child wants no more */
            }
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->stdin_off >= p->stdin_len)
        close_fd(&p->in);
}

/* One step without waiting: pipes moved, the child reaped if it exited,
 * killed if past its deadline. Returns 1 when it has finished (exited
 * and both output pipes at end of file). */
static int step(proc *p)
{
    feed(p);
    drain(&p->out, &p->stdout_buf);
    drain(&p->err, &p->stderr_buf);
    if (!p->reaped && p->pid > 0) {
        pid_t r;
        while ((r = waitpid(p->pid, &p->status, WNOHANG)) < 0 && errno == EINTR)
            ;
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->reaped = 1;
            p->pid = 0;
            p->end = ms_mono_ns();
        }
    }
    if (!p->reaped && p->deadline) {
        int64_t now = ms_mono_ns();
        if (!p->killed_at && now >= p->deadline) {
            p->timed_out = 1;
            p->killed_at = now;
            kill(p->pid, SIGTERM);
        } else if (p->killed_at && now - p->killed_at >= GRACE_NS) {
            kill(p->pid, SIGKILL);
        }
    }
    if (p->reaped) {
        /* a grandchild may hold the pipes open: once ours has gone, stop at what is there */
        close_fd(&p->in);
        drain(&p->out, &p->stdout_buf);
        drain(&p->err, &p->stderr_buf);
        close_fd(&p->out);
        close_fd(&p->err);
    }
    return p->reaped && p->out < 0 && p->err < 0;
}

static void kill_and_reap(proc *p)
{
    close_fd(&p->in);
    close_fd(&p->out);
    close_fd(&p->err);
    if (p->pid > 0 && !p->reaped) {
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
            ;
        p->reaped = 1;
        p->pid = 0;
    }
}

static int proc_gc(lua_State *L)
{
    proc *p = luaL_checkudata(L, 1, EXEC_MT);
    kill_and_reap(p);
    ms_buf_free(&p->stdout_buf);
    ms_buf_free(&p->stderr_buf);
    return 0;
}

static int proc_done(lua_State *L)
{
    proc *p = luaL_checkudata(L, 1, EXEC_MT);
    lua_pushboolean(L, step(p));
    return 1;
}

/* h:wait(): until it has finished, in slices of at most 100 ms so an
 * interrupt is prompt (the child is then killed by the handle's __gc). */
static int proc_wait(lua_State *L)
{
    proc *p = luaL_checkudata(L, 1, EXEC_MT);
    while (!step(p)) {
        if (ms_interrupted)
            return ms_raise_interrupt(L);
        struct pollfd fds[3];
        nfds_t n = 0;
        if (p->in >= 0)
            fds[n++] = (struct pollfd){.fd = p->in, .events = POLLOUT};
        if (p->out >= 0)
            fds[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
        if (p->err >= 0)
            fds[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
        /* the child's exit is no fd event when it left its pipes closed: poll for it in short slices */
        poll(fds, n, n ? 100 : 5);
    }
    if (ms_interrupted)
        return ms_raise_interrupt(L);
    return 0;
}

static int proc_result(lua_State *L)
{
    proc *p = luaL_checkudata(L, 1, EXEC_MT);
    if (!step(p))
        return luaL_error(L, "exec: result() before the command finished (wait for done() first)");
    if (p->stdout_buf.oom || p->stderr_buf.oom)
        return luaL_error(L, "exec: out of memory holding the command's output");
    lua_createtable(L, 0, 6);
    if (WIFEXITED(p->status)) {
        lua_pushinteger(L, WEXITSTATUS(p->status));
        lua_setfield(L, -2, "status");
    } else if (WIFSIGNALED(p->status)) {
        const char *name = sigabbrev_np(WTERMSIG(p->status));
        lua_pushfstring(L, "SIG%s", name ? name : "?");
        lua_setfield(L, -2, "signal");
    }
    lua_pushlstring(L, p->stdout_buf.data ? p->stdout_buf.data : "", p->stdout_buf.len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, p->stderr_buf.data ? p->stderr_buf.data : "", p->stderr_buf.len);
    lua_setfield(L, -2, "stderr");
    lua_pushboolean(L, p->timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushnumber(L, (lua_Number)((p->end ? p->end : ms_mono_ns()) - p->start) / 1e6);
    lua_setfield(L, -2, "elapsed_ms");
    return 1;
}

/* A pipe whose ends a later spawn does not inherit (only the dup2'd ones). */
static int cloexec_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC) != 0 ? -1 : 0;
}

/* moonspan._exec_start(argv, stdin|nil, timeout_ms|nil) -> handle */
static int l_exec_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer argc = luaL_len(L, 1);
    luaL_argcheck(L, argc >= 1, 1, "the command is missing: moonspan.exec{\"ls\", \"-l\"}");
    luaL_argcheck(L, argc <= MAX_ARGS, 1, "more than 4096 arguments");
    size_t in_len = 0;
    const char *in = luaL_optlstring(L, 2, NULL, &in_len);
    lua_Integer timeout = luaL_optinteger(L, 3, 0);
    luaL_argcheck(L, timeout >= 0 && timeout < 1000000000, 3, "timeout_ms must be between 0 (none) and 1e9");
    lua_settop(L, 3);
    char **argv = lua_newuserdatauv(L, sizeof *argv * (size_t)(argc + 1), 0); /* 4: freed by the GC */
    luaL_checkstack(L, (int)argc, "too many arguments");
    for (lua_Integer i = 1; i <= argc; i++) {
        lua_rawgeti(L, 1, i); /* stays on the stack: the string lives until we return */
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "moonspan.exec: argument %d must be a string, got %s", (int)i,
                              luaL_typename(L, -1));
        argv[i - 1] = (char *)lua_tostring(L, -1);
    }
    argv[argc] = NULL;

    proc *p = lua_newuserdatauv(L, sizeof *p, 1); /* made closed first, so __gc is always safe */
    memset(p, 0, sizeof *p);
    p->in = p->out = p->err = -1;
    luaL_setmetatable(L, EXEC_MT);
    if (in) {
        lua_pushvalue(L, 2);
        lua_setiuservalue(L, -2, 1);
        p->stdin_data = in;
        p->stdin_len = in_len;
    }
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    int e = 0;
    if (cloexec_pipe(pin) || cloexec_pipe(pout) || cloexec_pipe(perr))
        e = errno;
    posix_spawn_file_actions_t fa;
    if (!e && (e = posix_spawn_file_actions_init(&fa)) == 0) {
        posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
        posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
        posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
        e = posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (e)
            p->pid = 0;
    }
    int child_ends[] = {pin[0], pout[1], perr[1]};
    for (int i = 0; i < 3; i++)
        if (child_ends[i] >= 0)
            close(child_ends[i]);
    p->in = pin[1];
    p->out = pout[0];
    p->err = perr[0];
    if (e) {
        kill_and_reap(p);
        lua_pushfstring(L, "moonspan.exec: cannot run '%s': %s%s", argv[0], strerror(e),
                        e == ENOENT ? " (is it installed, and on PATH?)" : "");
        return lua_error(L); /* no position: moonspan.exec names its caller's */
    }
    int ours[] = {p->in, p->out, p->err};
    for (int i = 0; i < 3; i++)
        fcntl(ours[i], F_SETFL, fcntl(ours[i], F_GETFL) | O_NONBLOCK);
    if (!in)
        close_fd(&p->in); /* the child reads end of file */
    p->start = ms_mono_ns();
    p->deadline = timeout ? p->start + (int64_t)timeout * NS_PER_MS : 0;
    return 1;
}

void ms_open_exec(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__gc", proc_gc}, {"__close", proc_gc}, {NULL, NULL}};
    static const luaL_Reg methods[] = {
        {"done", proc_done}, {"wait", proc_wait}, {"result", proc_result}, {NULL, NULL}};
    luaL_newmetatable(L, EXEC_MT);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_getglobal(L, "moonspan");
    lua_pushcfunction(L, l_exec_start);
    lua_setfield(L, -2, "_exec_start");
    lua_pop(L, 1);
}
