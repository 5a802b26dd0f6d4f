# unitcoder sandbox: the job directory between jobs (appended to harness.py; one module, server
# side). A mixin of Server (server.py): after each job, empty what it could write (its directory,
# /tmp, /dev/shm) and make a fresh job directory, or keep it when the job left it untouched.


class _JobDir:
    def tidy(self):
        """Empties what a job could write (its directory, /tmp, /dev/shm) and makes a fresh job
        directory. Called after each report is sent, so it overlaps the caller's handling of it;
        no job starts before it is done."""
        jobdir = self.jobdir
        untouched = self._untouched()
        if not untouched:
            _shutil.rmtree(jobdir, ignore_errors=True)
        for shared in self.emptied:
            for name in _os.listdir(shared):
                if shared == "/tmp" and name in self.tmp_keep:
                    continue
                p = _os.path.join(shared, name)
                _shutil.rmtree(p, ignore_errors=True) if _os.path.isdir(p) and not _os.path.islink(p) else _os.unlink(p)
        if not untouched:
            _os.makedirs(_os.path.join(jobdir, "tmp"))
            if self.root:
                for d in (jobdir, _os.path.join(jobdir, "tmp")):
                    _os.chown(d, self.uid, self.uid)
            try:
                self.jobdir_made = self._jobdir_state()
            except OSError:
                self.jobdir_made = None  # e.g. no extended attributes here: always made afresh
        self.jobdir_ready = True

    def _jobdir_state(self):
        """What a job could change about its directory and its tmp without leaving a file there:
        entries, inode, owner, mode, modification time, extended attributes (ACLs among them)."""
        state = []
        for d in (self.jobdir, _os.path.join(self.jobdir, "tmp")):
            st = _os.lstat(d)
            state.append((sorted(_os.listdir(d)), st.st_ino, st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns,
                          sorted(_os.listxattr(d, follow_symlinks=False))))
        return state

    def _untouched(self):
        """Whether the last job left its directory exactly as tidy() made it (most jobs write
        nothing): then it is kept instead of removed and made again, ~0.1 ms per job. Anything
        else, or any doubt, and it is made afresh."""
        if self.jobdir_made is None:
            return False
        try:
            return self._jobdir_state() == self.jobdir_made
        except OSError:
            return False
