//! One operation to one action: its name (the `operationId` in snake case),
//! its input schema (path, query and header parameters and the body's
//! fields, each under a name a template can read), the request that puts
//! each input where it belongs, and the documented 2xx statuses. An input
//! left out sends nothing: null query parameters, headers and form fields
//! are not sent, and a JSON body takes only the fields given (`pick`).

use serde_json::{json, Map, Value};

use super::schema::Resolver;
use super::spec::{BodyKind, Op, Place};

/// `PostCustomersCustomer`, `chat.postMessage`, `get-user` → `post_customers_customer`, ...
pub fn snake_case(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = c.is_ascii_uppercase()
                && prev.is_some_and(|p| {
                    p.is_ascii_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
                });
            if boundary && !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    match out.chars().next() {
        Some(c) if c.is_ascii_digit() => format!("op_{out}"),
        None => "op".to_owned(),
        _ => out,
    }
}

/// An input's name: the parameter's own when a template can read it.
fn input_name(name: &str) -> String {
    let readable = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if readable {
        name.to_owned()
    } else {
        snake_case(name)
    }
}

/// How a template reads an input: an optional one that was left out reads
/// as null, which is not sent.
fn read(input: &str, required: bool) -> Value {
    if required {
        json!(format!("{{{{ input.{input} }}}}"))
    } else {
        json!(format!("{{{{ default input.{input} null }}}}"))
    }
}

/// Header parameters that are credentials, carried by `auth:` instead.
fn is_credential(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "authorization" | "token" | "x-api-key" | "api-key"
    )
}

/// The action, or why the operation cannot be one.
pub fn action(op: &Op, resolver: &Resolver<'_>) -> Result<(Value, Vec<String>), String> {
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut query = Map::new();
    let mut headers = Map::new();
    let mut notes = Vec::new();
    let mut path = op.path.clone();
    for placeholder in op
        .path
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| name)
    {
        let declared = op
            .params
            .iter()
            .any(|p| p.place == Place::Path && p.name == placeholder);
        if !declared {
            return Err(format!(
                "its path names `{{{placeholder}}}`, which no parameter declares"
            ));
        }
    }
    let mut add = |name: &str,
                   schema: Value,
                   is_required: bool,
                   properties: &mut Map<String, Value>|
     -> Result<String, String> {
        let input = input_name(name);
        if properties.contains_key(&input) {
            return Err(format!("two inputs would be named `{input}`"));
        }
        properties.insert(input.clone(), schema);
        if is_required {
            required.push(json!(input));
        }
        Ok(input)
    };
    for param in &op.params {
        let mut schema = resolver.flatten(&param.schema);
        if let (Some(d), Value::Object(s)) = (&param.description, &mut schema) {
            s.entry("description")
                .or_insert_with(|| json!(super::schema::first_sentence(d)));
        }
        match param.place {
            Place::Path => {
                let input = add(&param.name, schema, true, &mut properties)?;
                let placeholder = format!("{{{}}}", param.name);
                if !path.contains(&placeholder) {
                    return Err(format!(
                        "path parameter `{}` is not in the path",
                        param.name
                    ));
                }
                path = path.replace(&placeholder, &format!("{{{{ url_encode input.{input} }}}}"));
            }
            Place::Query => {
                let input = add(&param.name, schema, param.required, &mut properties)?;
                query.insert(param.name.clone(), read(&input, param.required));
            }
            Place::Header if is_credential(&param.name) => {}
            Place::Header => {
                let input = add(&param.name, schema, param.required, &mut properties)?;
                headers.insert(param.name.clone(), read(&input, param.required));
            }
            Place::Cookie => notes.push(format!("cookie parameter `{}` left out", param.name)),
        }
    }
    let mut request = Map::new();
    request.insert("method".into(), json!(op.method.to_ascii_uppercase()));
    request.insert("path".into(), json!(path));
    if let Some(body) = &op.body {
        let schema = resolver.flatten(&body.schema);
        let fields = schema.get("properties").and_then(Value::as_object).cloned();
        let is_object = schema.get("type").is_none_or(|t| t == "object");
        match (&body.kind, fields) {
            (BodyKind::Other(media), _) => {
                return Err(format!("its request body is `{media}`, which an action cannot send (JSON and forms can)"));
            }
            (kind, Some(fields))
                if is_object
                    && fields
                        .keys()
                        .all(|k| !properties.contains_key(&input_name(k))) =>
            {
                let body_required: Vec<String> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut names = Vec::new();
                let mut form = Map::new();
                for (field, field_schema) in &fields {
                    let needed = body.required && body_required.contains(field);
                    let input = add(field, field_schema.clone(), needed, &mut properties)?;
                    form.insert(field.clone(), read(&input, needed));
                    names.push(input);
                }
                if *kind == BodyKind::Form {
                    request.insert("form".into(), Value::Object(form));
                } else if names.iter().zip(fields.keys()).all(|(a, b)| a == b) {
                    let listed: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                    request.insert(
                        "json".into(),
                        json!(format!("{{{{ pick input {} }}}}", listed.join(" "))),
                    );
                } else {
                    request.insert("json".into(), Value::Object(form));
                    notes.push(
                        "body fields renamed for templates are sent even when left out (as null)"
                            .to_owned(),
                    );
                }
            }
            (BodyKind::Form, _) => {
                return Err("its form body has no fields an action can name".to_owned());
            }
            (BodyKind::Json, _) => {
                add("body", schema, body.required, &mut properties)?;
                request.insert("json".into(), read("body", body.required));
            }
        }
    }
    if !query.is_empty() {
        request.insert("query".into(), Value::Object(query));
    }
    if !headers.is_empty() {
        request.insert("headers".into(), Value::Object(headers));
    }
    let mut input = Map::new();
    input.insert("type".into(), json!("object"));
    if !required.is_empty() {
        input.insert("required".into(), Value::Array(required));
    }
    input.insert("properties".into(), Value::Object(properties));
    let mut action = Map::new();
    if let Some(summary) = &op.summary {
        action.insert("description".into(), json!(summary));
    }
    action.insert("input".into(), Value::Object(input));
    action.insert("request".into(), Value::Object(request));
    if !op.statuses.is_empty() {
        action.insert("expect".into(), json!(op.statuses));
    }
    action.insert("output".into(), json!("{{ response.body }}"));
    Ok((Value::Object(action), notes))
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn operation_ids_become_snake_case() {
        assert_eq!(
            snake_case("PostCustomersCustomer"),
            "post_customers_customer"
        );
        assert_eq!(snake_case("chat_postMessage"), "chat_post_message");
        assert_eq!(snake_case("getHTTPStatus"), "get_http_status");
        assert_eq!(snake_case("get-user by id"), "get_user_by_id");
        assert_eq!(snake_case("v1Users2FA"), "v1_users2_fa");
        assert_eq!(snake_case("123go"), "op_123go");
    }
}
