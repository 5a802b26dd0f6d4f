# unitcoder sandbox: watching one job from outside (appended to harness.py; one module, server
# side). A mixin of Server (server.py): the wall clock (SIGKILL through the pidfd), the exit status
# (the zygote's "exit" message), and bounded tails of the event, stdout and stderr pipes.


class _Supervise:
    def _supervise(self, pidfd, readers, limits, start, report):
        tail = self.cfg.get("tail_bytes", 4096)
        ev_cap = 4 << 20
        bufs = {"ev": bytearray(), "out": bytearray(), "err": bytearray()}
        # poll(), not the selectors module: no epoll descriptor to make and close, no key objects
        # per wake-up (~0.1 ms of the server's Python per job).
        poller, watch = _select.poll(), dict(readers)
        # The child's end arrives as the zygote's "exit" message (it reaps the child and reports
        # at once): one wake-up, where the pidfd would add a second. The pidfd is for SIGKILL.
        watch[self.sock.fileno()] = "exit"
        for fd in watch:
            poller.register(fd, _select.POLLIN)
        # The pipe unitcoder reads our reports from (stdout) reports POLLERR once unitcoder is gone
        # (killed, or stopped by a terminal's Ctrl-C, which reaches only unitcoder: this server runs
        # in a process group of its own). Between jobs the end of stdin stops this server; during a
        # job, this ends the job at once instead of at its time limit, with nobody left to read it.
        poller.register(1, 0)
        watch[1] = "reader"
        deadline = start + limits["timeout"]
        exited, drain_until, open_pipes = False, None, len(readers)
        while True:
            now = _time.monotonic()
            if not exited and now >= deadline and not report["timed_out"]:
                report["timed_out"] = True
                try:
                    _signal.pidfd_send_signal(pidfd, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if exited and (open_pipes == 0 or now >= drain_until):
                break
            wait = (drain_until - now) if exited else max(0.0, deadline - now) + 0.01
            wait = max(0.0, wait) if not report["timed_out"] or exited else 1.0
            for fd, _mask in poller.poll(int(wait * 1000) + 1):
                kind = watch[fd]
                if kind == "reader":
                    try:
                        _signal.pidfd_send_signal(pidfd, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _os._exit(0)  # the zygote, and with it any process left, dies with us (PDEATHSIG)
                if kind == "exit":
                    poller.unregister(fd)
                    status = self._await_exit()
                    if _os.WIFSIGNALED(status):
                        report["signal"] = _os.WTERMSIG(status)
                    else:
                        report["exit_code"] = _os.WEXITSTATUS(status)
                    exited, drain_until = True, _time.monotonic() + 1.0
                    continue
                chunk = _os.read(fd, 1 << 16)
                if not chunk:
                    poller.unregister(fd)
                    open_pipes -= 1
                    continue
                buf = bufs[kind]
                if kind == "ev":
                    if len(buf) + len(chunk) > ev_cap:
                        report["events_truncated"] = True
                    else:
                        buf += chunk
                else:
                    counter = "stdout_bytes" if kind == "out" else "stderr_bytes"
                    report[counter] += len(chunk)
                    buf += chunk
                    if len(buf) > 4 * tail:
                        del buf[: len(buf) - tail]
        report["events"] = bytes(bufs["ev"]).decode("utf-8", "replace").splitlines()
        for kind, key in (("out", "stdout_tail"), ("err", "stderr_tail")):
            data = bytes(bufs[kind][-tail:])
            report[key] = data.decode("utf-8", "replace")
