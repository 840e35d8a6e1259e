//! Where each field of a YAML document is: field path -> line and column.
//!
//! serde works on values without positions, so semantic errors found later
//! (an unknown step reference, a bad regex) look their field path up here.
//! Built from a YAML parser's events; aliases are never expanded.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::diagnostic::Position;

/// Field path (`steps[2].http.url`) to the position of its value and of its key.
#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

impl SourceMap {
    /// Indexes `text`; a document the parser rejects gives an empty map.
    pub fn build(text: &str) -> SourceMap {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return SourceMap::default();
        }
        builder.map
    }

    /// The position of the value at `path`, or of its nearest ancestor.
    pub fn value(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(pos) = self.values.get(path) {
                return Some(*pos);
            }
            path = parent(path)?;
        }
    }

    /// The position of the key that names `path` (for unknown or misspelt keys).
    pub fn key(&self, path: &str) -> Option<Position> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    match path.rfind(['.', '[']) {
        Some(i) => Some(&path[..i]),
        None => Some(""),
    }
}

/// Joins a field path the way errors print it: `a.b[0].c`.
pub fn join_key(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

pub fn join_index(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    map: SourceMap,
    stack: Vec<Frame>,
    /// Depth of a complex (non-scalar) mapping key being skipped.
    skipping: usize,
}

fn position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl Builder {
    /// The path of the value that is about to start, or None when a key is expected.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => Some(join_index(path, *index)),
            Some(Frame::Map {
                path,
                key: Some(key),
            }) => Some(join_key(path, key)),
            Some(Frame::Map { key: None, .. }) => None,
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Seq { index, .. }) => *index += 1,
            Some(Frame::Map { key, .. }) => *key = None,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.skipping > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.skipping += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    self.skipping -= 1;
                    if self.skipping == 0 {
                        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                            *key = Some("?".to_owned());
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::Scalar(text, ..) => match self.next_value_path() {
                Some(path) => {
                    self.map.values.insert(path, position(mark));
                    self.value_done();
                }
                None => {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        self.map.keys.insert(join_key(path, &text), position(mark));
                        *key = Some(text);
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(path) = self.next_value_path() {
                    self.map.values.insert(path, position(mark));
                    self.value_done();
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => match self.next_value_path() {
                Some(path) => {
                    // A block mapping's own marker sits past its first key; its key is clearer.
                    let at = self.map.keys.get(&path).copied().unwrap_or(position(mark));
                    self.map.values.insert(path.clone(), at);
                    self.stack
                        .push(if matches!(event, Event::MappingStart(..)) {
                            Frame::Map { path, key: None }
                        } else {
                            Frame::Seq { path, index: 0 }
                        });
                }
                None => self.skipping = 1,
            },
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_and_keys() {
        let map = SourceMap::build("name: x\nsteps:\n  - id: a\n    http:\n      url: http://x\n");
        assert_eq!(map.value("name"), Some(Position { line: 1, col: 7 }));
        assert_eq!(
            map.value("steps[0].http.url"),
            Some(Position { line: 5, col: 12 })
        );
        assert_eq!(map.key("steps[0].http"), Some(Position { line: 4, col: 5 }));
        // Unknown paths fall back to their nearest known ancestor.
        assert_eq!(
            map.value("steps[0].http.nope"),
            Some(Position { line: 4, col: 5 })
        );
        assert_eq!(map.value("steps[0]"), Some(Position { line: 3, col: 7 }));
    }

    #[test]
    fn flow_style_and_aliases_are_indexed_without_expansion() {
        let map = SourceMap::build("a: &x [1, 2]\nb: *x\nc: {d: [e]}\n");
        assert_eq!(map.value("a[1]"), Some(Position { line: 1, col: 11 }));
        assert_eq!(map.value("b"), Some(Position { line: 2, col: 4 }));
        assert_eq!(map.value("c.d[0]"), Some(Position { line: 3, col: 9 }));
    }

    #[test]
    fn broken_yaml_gives_an_empty_map() {
        assert_eq!(SourceMap::build("a: [1, 2\n").value("a"), None);
    }
}
