//! JSON Schemas out of an API description: `$ref`s resolved (local ones;
//! a cycle or the depth limit gives `{}`, anything), `allOf` merged,
//! OpenAPI 3.0's `nullable` turned into a `null` type, and only the
//! keywords an input check needs kept (no `pattern`: vendors write regexes
//! that are not ECMA's, and the server checks them anyway).

use serde_json::{json, Map, Value};

/// How deep schemas nest before the rest is taken as anything.
pub const MAX_DEPTH: usize = 6;

/// The description's root, for `$ref`s.
pub struct Resolver<'a> {
    pub root: &'a Value,
}

impl<'a> Resolver<'a> {
    /// What a local `$ref` (`#/components/schemas/X`) points at.
    pub fn target(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    /// `value`, or what its `$ref` points at (followed a few times).
    pub fn deref(&self, mut value: &'a Value) -> &'a Value {
        for _ in 0..8 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.target(r) {
                    Some(t) => value = t,
                    None => return value,
                },
                None => return value,
            }
        }
        value
    }

    /// A self-contained schema for `schema`.
    pub fn flatten(&self, schema: &Value) -> Value {
        self.walk(schema, 0, &mut Vec::new())
    }

    fn walk(&self, schema: &Value, depth: usize, seen: &mut Vec<String>) -> Value {
        if depth > MAX_DEPTH {
            return json!({});
        }
        let Value::Object(map) = schema else {
            return json!({});
        };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            if seen.iter().any(|s| s == reference) {
                return json!({});
            }
            let Some(target) = self.target(reference) else {
                return json!({});
            };
            seen.push(reference.to_owned());
            let out = self.walk(target, depth, seen);
            seen.pop();
            return out;
        }
        if let Some(Value::Array(parts)) = map.get("allOf") {
            let mut merged = Map::new();
            let mut properties = Map::new();
            let mut required: Vec<Value> = Vec::new();
            for part in parts {
                if let Value::Object(part) = self.walk(part, depth, seen) {
                    for (k, v) in part {
                        match k.as_str() {
                            "properties" => {
                                if let Value::Object(p) = v {
                                    properties.extend(p);
                                }
                            }
                            "required" => {
                                if let Value::Array(r) = v {
                                    for name in r {
                                        if !required.contains(&name) {
                                            required.push(name);
                                        }
                                    }
                                }
                            }
                            _ => {
                                merged.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "allOf") {
                if let Value::Object(rest) = self.walk(&json!({ k: v }), depth, seen) {
                    merged.extend(rest);
                }
            }
            if !properties.is_empty() {
                merged.insert("properties".into(), Value::Object(properties));
                merged.entry("type").or_insert_with(|| json!("object"));
            }
            if !required.is_empty() {
                merged.insert("required".into(), Value::Array(required));
            }
            return Value::Object(merged);
        }
        let mut out = Map::new();
        for (key, value) in map {
            match key.as_str() {
                "type" | "enum" | "format" | "default" | "minimum" | "maximum"
                | "exclusiveMinimum" | "exclusiveMaximum" | "minLength" | "maxLength"
                | "minItems" | "maxItems" | "uniqueItems" | "multipleOf" | "const" => {
                    out.insert(key.clone(), value.clone());
                }
                "required" if value.is_array() => {
                    out.insert(key.clone(), value.clone());
                }
                "description" => {
                    if let Some(text) = value.as_str().map(first_sentence) {
                        out.insert(key.clone(), json!(text));
                    }
                }
                "properties" => {
                    if let Value::Object(props) = value {
                        let walked: Map<String, Value> = props
                            .iter()
                            .map(|(k, v)| (k.clone(), self.walk(v, depth + 1, seen)))
                            .collect();
                        out.insert(key.clone(), Value::Object(walked));
                    }
                }
                "items" => {
                    out.insert(key.clone(), self.walk(value, depth + 1, seen));
                }
                "additionalProperties" => {
                    let walked = match value {
                        Value::Bool(b) => Value::Bool(*b),
                        other => self.walk(other, depth + 1, seen),
                    };
                    out.insert(key.clone(), walked);
                }
                "anyOf" | "oneOf" => {
                    if let Value::Array(options) = value {
                        let walked: Vec<Value> = options
                            .iter()
                            .map(|o| self.walk(o, depth + 1, seen))
                            .collect();
                        // `oneOf` would refuse a value two options both take.
                        out.insert("anyOf".into(), Value::Array(walked));
                    }
                }
                _ => {}
            }
        }
        if map.get("nullable") == Some(&Value::Bool(true)) {
            if let Some(Value::String(t)) = out.get("type").cloned() {
                out.insert("type".into(), json!([t, "null"]));
            }
        }
        Value::Object(out)
    }
}

/// A description's first sentence, at most 160 characters: enough to say
/// what a field is without copying the vendor's documentation.
pub fn first_sentence(text: &str) -> String {
    // Some vendors write HTML (`<p>Deletes a customer.</p>`): the tags go.
    let mut plain = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let line = plain.trim().lines().next().unwrap_or_default();
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line,
    };
    let mut out: String = sentence.chars().take(160).collect();
    if out.len() < sentence.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_all_of_nullable_and_cycles_are_flattened() {
        let root = json!({
            "components": { "schemas": {
                "Base": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } },
                "Node": { "type": "object", "properties": { "next": { "$ref": "#/components/schemas/Node" } } },
            }}
        });
        let r = Resolver { root: &root };
        let merged = r.flatten(&json!({ "allOf": [
            { "$ref": "#/components/schemas/Base" },
            { "properties": { "name": { "type": "string", "nullable": true, "pattern": "^x(" } } }
        ]}));
        assert_eq!(
            merged,
            json!({ "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string" }, "name": { "type": ["string", "null"] } } })
        );
        let node = r.flatten(&json!({ "$ref": "#/components/schemas/Node" }));
        assert_eq!(node["properties"]["next"], json!({}));
    }
}
