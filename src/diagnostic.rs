//! A problem found in a scenario file, said the way a user can act on it:
//! `FILE:LINE:COL: field.path: message`, then the offending line with a caret.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in a scenario file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

/// One problem in one file. Loading and validation return every one they find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// Where the problem is, when the YAML parser could tell.
    pub position: Option<Position>,
    /// The field path, e.g. `steps[2].http.url`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: &Path,
        position: Option<Position>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            position,
            path: path.into(),
            message: message.into(),
        }
    }

    /// The one-line form followed by the source line and a caret under the column.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.to_string();
        if let (Some(pos), Some(source)) = (self.position, source) {
            if let Some(line) = source.lines().nth(pos.line.saturating_sub(1)) {
                if line.len() <= 300 {
                    let gutter = pos.line.to_string().len();
                    let caret_at: usize = line
                        .chars()
                        .take(pos.col.saturating_sub(1))
                        .map(|c| if c == '\t' { 1 } else { c.len_utf8().min(1) })
                        .sum();
                    out.push_str(&format!(
                        "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}^",
                        "",
                        pos.line,
                        line,
                        "",
                        " ".repeat(caret_at),
                    ));
                }
            }
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.position {
            write!(f, ":{}:{}", pos.line, pos.col)?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(word, c)))
        .filter(|(c, score)| *score > 0.82 || strsim::levenshtein(word, c) <= 1)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_path_and_caret() {
        let d = Diagnostic::new(
            Path::new("a.yaml"),
            Some(Position { line: 2, col: 5 }),
            "steps[0].id",
            "bad",
        );
        assert_eq!(d.to_string(), "a.yaml:2:5: steps[0].id: bad");
        let rendered = d.render(Some("x: 1\nid: Bad\n"));
        assert!(rendered.ends_with("2 | id: Bad\n  |     ^"), "{rendered}");
    }

    #[test]
    fn suggestions_only_for_close_words() {
        assert_eq!(did_you_mean("htp", ["http", "set", "filter"]), Some("http"));
        assert_eq!(
            did_you_mean("on_eror", ["on_error", "owner"]),
            Some("on_error")
        );
        assert_eq!(did_you_mean("zzz", ["http", "set"]), None);
    }
}
