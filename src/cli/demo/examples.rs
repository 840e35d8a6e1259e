//! The example scenarios, compiled into the binary so that `scenarist demo`
//! plays the same story from any folder (`--dir` plays another folder).

use std::path::Path;

/// Every file of `scenarios/` the demo plays, by name.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "announce-reward.yaml",
        include_str!("../../../scenarios/announce-reward.yaml"),
    ),
    (
        "crm-deal-won.yaml",
        include_str!("../../../scenarios/crm-deal-won.yaml"),
    ),
    (
        "enrol-crm-customer.yaml",
        include_str!("../../../scenarios/enrol-crm-customer.yaml"),
    ),
    (
        "enrol-signup-form.yaml",
        include_str!("../../../scenarios/enrol-signup-form.yaml"),
    ),
    (
        "poll-first-payments.yaml",
        include_str!("../../../scenarios/poll-first-payments.yaml"),
    ),
    (
        "qualify-closed-won.yaml",
        include_str!("../../../scenarios/qualify-closed-won.yaml"),
    ),
    (
        "referral-journey.yaml",
        include_str!("../../../scenarios/referral-journey.yaml"),
    ),
    (
        "route-referred-lead.yaml",
        include_str!("../../../scenarios/route-referred-lead.yaml"),
    ),
    (
        "weekly-report.yaml",
        include_str!("../../../scenarios/weekly-report.yaml"),
    ),
];

/// Writes the examples into `dir`, replacing the scenario files there.
pub fn write_examples(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        if scenarist::catalog::is_scenario_file(&entry.path()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for (name, text) in EXAMPLES {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}
