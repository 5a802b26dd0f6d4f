//! Per-worker control groups: the memory and pids limits that bound a candidate's whole process
//! tree (RLIMIT_AS and RLIMIT_NPROC are per process / per uid and do not). The fork server sets the
//! limits per job; its zygote lives in the groups, so every child is born there. cgroup v1 (separate
//! `memory` and `pids` hierarchies) and v2 (one unified hierarchy with both controllers) are handled;
//! when neither is writable the sandbox reports the mechanisms as missing and falls back to rlimits.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// One worker's memory and pids groups (the same directory under cgroup v2).
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    v2: bool,
    memory: PathBuf,
    pids: PathBuf,
}

impl WorkerCgroup {
    /// Creates the groups for the worker called `name`, or says why it could not.
    pub(crate) fn create(name: &str) -> Result<WorkerCgroup, String> {
        let root = Path::new(ROOT);
        if root.join("memory/cgroup.procs").exists() && root.join("pids/cgroup.procs").exists() {
            let memory = root.join("memory/unitcoder").join(name);
            let pids = root.join("pids/unitcoder").join(name);
            for dir in [&memory, &pids] {
                fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            return Ok(WorkerCgroup { v2: false, memory, pids });
        }
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.contains("memory") && controllers.contains("pids") {
            let parent = root.join("unitcoder");
            fs::create_dir_all(&parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
            // Controllers must be enabled on every level above the leaf.
            for dir in [root, parent.as_path()] {
                let file = dir.join("cgroup.subtree_control");
                fs::write(&file, "+memory +pids").map_err(|e| format!("writing {}: {e}", file.display()))?;
            }
            let leaf = parent.join(name);
            fs::create_dir_all(&leaf).map_err(|e| format!("creating {}: {e}", leaf.display()))?;
            return Ok(WorkerCgroup { v2: true, memory: leaf.clone(), pids: leaf });
        }
        Err(format!("no cgroup memory+pids controllers under {ROOT}"))
    }

    /// The description the fork server reads.
    pub(crate) fn to_json(&self) -> Value {
        let mut dirs = vec![self.memory.display().to_string()];
        if self.pids != self.memory {
            dirs.push(self.pids.display().to_string());
        }
        json!({
            "kind": if self.v2 { "v2" } else { "v1" },
            "memory": self.memory,
            "pids": self.pids,
            "dirs": dirs,
        })
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        // The server has exited and its children are dead by now; an empty group can be removed.
        for dir in [&self.memory, &self.pids] {
            for _ in 0..20 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}
