//! Process-wide hardening, done first thing by the app and the CLI.

/// Keep the tokens in this process's memory out of core files and debuggers.
///
/// On Linux: `prctl(PR_SET_DUMPABLE, 0)`, so the kernel writes no core file on a crash
/// (unless `fs.suid_dumpable = 2`, where it writes one that only root can read), other
/// processes of the same user cannot `ptrace` it (`gcore`, `gdb -p`) or read its
/// `/proc/<pid>/mem`, `environ` or `cmdline`; and a soft `RLIMIT_CORE` of 0, so a crash
/// handler (`systemd-coredump`, apport), which sees the limit, stores nothing either.
/// Elsewhere it does nothing yet (below). On an error the app and the CLI refuse to start (the
/// safer default; neither call fails on any Linux kernel Authdeck runs on).
#[cfg(target_os = "linux")]
pub fn harden() -> std::io::Result<()> {
    use rustix::process::{getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior};
    use rustix::process::{Resource, Rlimit};

    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    let core = getrlimit(Resource::Core);
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: core.maximum,
        },
    )?;
    Ok(())
}

/// Elsewhere: a documented no-op, so the app and the CLI start the same way on every
/// OS. What each would need (docs/PLATFORMS.md): on Windows, no Windows Error Reporting
/// dumps of this process (`WerAddExcludedApplication`) and a process DACL that denies
/// `PROCESS_VM_READ` to other processes of the user; on macOS, `ptrace(PT_DENY_ATTACH)`
/// and a zero `RLIMIT_CORE`. Not implemented: nobody could run it here.
#[cfg(not(target_os = "linux"))]
pub fn harden() -> std::io::Result<()> {
    Ok(())
}
