//! Who runs an execution: `host/pid/start`, where `start` is the process's
//! start time, so that a recycled pid is never mistaken for the old process.

use std::sync::OnceLock;

/// This process's owner tag.
pub fn this_process() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!("{}/{pid}/{}", host(), start_time(pid).unwrap_or_default())
    })
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Field 22 of `/proc/PID/stat`: clock ticks since boot when the process started.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether the process an owner tag names may still be running. Only a
/// process on this host whose pid is gone (or now belongs to a process started
/// at another time) is known to be dead; anything else counts as alive, so an
/// execution is never run twice at once.
pub fn may_be_alive(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, '/');
    let (Some(start), Some(pid), Some(host_name)) = (parts.next(), parts.next(), parts.next())
    else {
        return true;
    };
    if host_name != host() || !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    match start_time(pid) {
        None => false,
        Some(now_start) => now_start == start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_not() {
        assert!(may_be_alive(this_process()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        let owner = format!("{}/{pid}/{}", host(), start_time(pid).unwrap_or_default());
        child.wait().expect("wait");
        assert!(!may_be_alive(&owner), "{owner}");
        assert!(may_be_alive("another-host/1/1"));
    }
}
