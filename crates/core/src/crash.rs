//! Test hook for the crash-safety tests (`crates/cli/tests/e2e`): in debug builds,
//! `AUTHDECK_CRASH_AT=<name>` kills the process at that point of a commit sequence, like
//! `kill -9`. The points: `after_answer_journalled` (manager), `after_new_tokens_written`,
//! `after_generation_switched`, `after_old_tokens_deleted` (one connection's commit),
//! `before_token_set_written`, `after_token_set_written`, `after_token_set_switched` (a
//! batch's; see `store::local`); `import_before_team_insert`,
//! `import_after_team_commit`, `import_between_connections` (`team import`, in
//! `authdeck_team::import`).

pub fn crash_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("AUTHDECK_CRASH_AT").is_ok_and(|at| at == name) {
        std::process::abort();
    }
    let _ = name;
}
