//! A linear check of how deeply a YAML text nests flow collections (`[` and
//! `{`), run before the YAML parser: libyaml's scanner costs quadratic time
//! in the flow depth (a 200 KB file of brackets took 49 s to be refused),
//! while this scan reads each byte once. Brackets inside quoted scalars and
//! comments do not count. A stray bracket in plain text counts once, so only
//! a text with more than [`MAX_DEPTH`] of them, or truly nested ones, is
//! refused.

use crate::diagnostic::Position;

/// The deepest nesting accepted; serde_yaml refuses deeper block nesting
/// with the same limit.
pub const MAX_DEPTH: usize = 128;

/// Where the first bracket deeper than [`MAX_DEPTH`] opens, if any.
pub fn too_deep(text: &str) -> Option<Position> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut previous = '\n';
    for c in text.chars() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            comment = false;
            // A double-quoted scalar may span lines; a single-quoted too.
            previous = c;
            continue;
        }
        if comment {
            continue;
        }
        match quote {
            Some('"') => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    quote = None;
                }
            }
            Some(_) => {
                if c == '\'' {
                    quote = None;
                }
            }
            None => match c {
                '#' if previous.is_whitespace() => comment = true,
                '"' | '\'' if matches!(previous, ' ' | '\t' | '\n' | '[' | '{' | ',' | ':') => {
                    quote = Some(c)
                }
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(Position { line, col });
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        previous = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_brackets_are_found_in_one_pass_and_quoted_ones_do_not_count() {
        let deep = format!("steps: {}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            too_deep(&deep),
            Some(Position {
                line: 1,
                col: 8 + 128
            })
        );
        let fine = format!("a: {}{}\n", "[".repeat(128), "]".repeat(128));
        assert_eq!(too_deep(&fine), None);
        let quoted = format!(
            "a: \"{}\"\nb: '{}'\n# {}\n",
            "[".repeat(300),
            "{".repeat(300),
            "[".repeat(300)
        );
        assert_eq!(too_deep(&quoted), None);
        let big = format!("steps: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        assert!(too_deep(&big).is_some());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
