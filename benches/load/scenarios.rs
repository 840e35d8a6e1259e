//! The scenarios the load benches run (a webhook of a referral program:
//! filter, set, one POST) and a store filled with finished history.

use std::path::{Path, PathBuf};

pub fn write_scenarios(dir: &Path, downstream: &str) -> PathBuf {
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for (name, respond, route) in [
        ("lead", "", "fast"),
        ("lead-after-run", "respond: after_run", "fast"),
        ("lead-slow-api", "", "slow"),
    ] {
        std::fs::write(
            scenarios.join(format!("{name}.yaml")),
            format!(
                r#"name: {name}
trigger:
  webhook: {{ path: {name}, {respond} }}
steps:
  - id: referred
    filter: {{ value: "{{{{ trigger.body.referral_code }}}}", exists: true }}
  - id: lead
    set: {{ email: "{{{{ lower trigger.body.email }}}}", code: "{{{{ trigger.body.referral_code }}}}" }}
  - id: crm
    http: {{ method: POST, url: "{downstream}/{route}/crm/leads", json: "{{{{ steps.lead }}}}" }}
"#
            )
            .replace(", }", " }"),
        )
        .unwrap();
    }
    scenarios
}

/// Multiplies the finished executions already in `path` (and their steps)
/// into `count` more, older than any, as months of history would be.
pub fn fill_history(path: &Path, count: u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; BEGIN;
         CREATE TEMP TABLE model AS SELECT * FROM executions WHERE status = 'succeeded' LIMIT 1;
         CREATE TEMP TABLE model_steps AS SELECT * FROM steps WHERE execution_id = (SELECT id FROM model);
         CREATE TEMP TABLE n AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) SELECT i FROM n;
         INSERT INTO executions (id, scenario, version, status, trigger_doc, vars, attempt, started_at,
                                 updated_at, finished_at, next_retry_at, error_step, error, owner, replay_of, concurrency_key)
           SELECT printf('00000000-0000-7000-8000-%012x', i), scenario, version, status, trigger_doc, vars, attempt,
                  started_at - i * 1000000, updated_at - i * 1000000, finished_at - i * 1000000, NULL, NULL, NULL, NULL, NULL, NULL
           FROM model, n;
         INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)
           SELECT printf('00000000-0000-7000-8000-%012x', i), path, step_key, kind, status, attempts, input, output, error, detail,
                  started_at - i * 1000000, duration_ms
           FROM model_steps, n;
         COMMIT; PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;"
    ))
    .unwrap();
}
