//! Reading a trigger payload given on the command line (`--input FILE|-`).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::Value;

/// Inputs larger than this are refused: a trigger payload is an event, not a data dump.
pub const MAX_INPUT_BYTES: u64 = 5 * 1024 * 1024;

/// Reads JSON (or YAML, for hand-written inputs) from a file or `-` for stdin.
pub fn read_input(source: &str) -> anyhow::Result<Value> {
    let mut bytes = Vec::new();
    let what = if source == "-" {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("cannot read the input from stdin")?;
        "stdin".to_owned()
    } else {
        let path = Path::new(source);
        std::fs::File::open(path)
            .with_context(|| format!("cannot read the input file {source}"))?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the input file {source}"))?;
        source.to_owned()
    };
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        bail!(
            "the input ({what}) is larger than {} MiB; a trigger payload must be smaller",
            MAX_INPUT_BYTES / 1024 / 1024
        );
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        bail!("the input ({what}) is not UTF-8 text; give a JSON document");
    };
    parse_document(text)
        .with_context(|| format!("the input ({what}) is not a valid JSON or YAML document"))
}

fn parse_document(text: &str) -> anyhow::Result<Value> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        bail!("it is empty");
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(value),
        Err(json_error) if trimmed.starts_with(['{', '[', '"']) => Err(json_error.into()),
        Err(_) => {
            let value: Value = serde_yaml::from_str(text)?;
            Ok(value)
        }
    }
}

/// `k=v`: the value is read as JSON when it is JSON (`5`, `true`, `[1]`), else as text.
pub fn parse_var(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not key=value"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has an empty key"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}
