//! An API description read into one shape, whatever its version: the
//! operations (path, method, parameters, body, documented statuses), the
//! servers and the security schemes. Swagger 2.0's `body` and `formData`
//! parameters become a request body, as OpenAPI 3 writes it.

use serde_json::{json, Value};

use super::schema::Resolver;
use super::ImportError;

pub const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub place: Place,
    pub required: bool,
    pub schema: Value,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// A media type that cannot be mapped (multipart, XML, binary).
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Body {
    pub kind: BodyKind,
    pub schema: Value,
    pub required: bool,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: Option<String>,
    pub method: String,
    pub path: String,
    pub summary: Option<String>,
    pub tags: Vec<String>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    /// Documented 2xx statuses.
    pub statuses: Vec<u16>,
}

/// The parts of a description an app is made of.
pub struct Described<'a> {
    pub resolver: Resolver<'a>,
    pub title: Option<String>,
    /// The first server's URL, with `{variable}` left in, and the variables.
    pub server: Option<String>,
    pub ops: Vec<Op>,
    /// `(name, scheme)` of the security schemes, preferred first.
    pub schemes: Vec<(String, &'a Value)>,
    pub swagger: bool,
}

fn place(text: &str) -> Option<Place> {
    Some(match text {
        "path" => Place::Path,
        "query" => Place::Query,
        "header" => Place::Header,
        "cookie" => Place::Cookie,
        _ => return None,
    })
}

/// A Swagger 2.0 parameter's own type fields as a schema.
fn inline_schema(param: &Value) -> Value {
    let mut schema = serde_json::Map::new();
    for key in [
        "type", "items", "enum", "format", "default", "minimum", "maximum",
    ] {
        if let Some(v) = param.get(key) {
            schema.insert(key.to_owned(), v.clone());
        }
    }
    if schema.get("type") == Some(&json!("file")) {
        schema.insert("type".into(), json!("string"));
    }
    Value::Object(schema)
}

pub fn read(root: &Value) -> Result<Described<'_>, ImportError> {
    let swagger = match (root.get("openapi"), root.get("swagger")) {
        (Some(Value::String(v)), _) if v.starts_with("3.") => false,
        (_, Some(Value::String(v))) if v == "2.0" => true,
        (Some(v), _) | (_, Some(v)) => {
            return Err(ImportError::Version(v.to_string()));
        }
        (None, None) => return Err(ImportError::NotOpenApi),
    };
    let resolver = Resolver { root };
    let Some(Value::Object(paths)) = root.get("paths") else {
        return Err(ImportError::NotOpenApi);
    };
    let server = if swagger {
        root.get("host").and_then(Value::as_str).map(|host| {
            let scheme = root
                .pointer("/schemes/0")
                .and_then(Value::as_str)
                .unwrap_or("https");
            let base = root.get("basePath").and_then(Value::as_str).unwrap_or("");
            format!("{scheme}://{host}{}", base.trim_end_matches('/'))
        })
    } else {
        root.pointer("/servers/0/url")
            .and_then(Value::as_str)
            .map(|u| u.trim_end_matches('/').to_owned())
    };
    let consumes_default: Vec<String> = root
        .get("consumes")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = resolver.deref(item);
        let shared: Vec<&Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let mut params = Vec::new();
            let mut form = serde_json::Map::new();
            let mut form_required = Vec::new();
            let mut body = None;
            let own: Vec<&Value> = op
                .get("parameters")
                .and_then(Value::as_array)
                .map(|p| p.iter().collect())
                .unwrap_or_default();
            // An operation's parameter replaces a path item's of the same name and place.
            let mut all: Vec<&Value> = Vec::new();
            for p in shared.iter().chain(own.iter()) {
                let p = resolver.deref(p);
                let key = (p.get("name"), p.get("in"));
                all.retain(|q| (q.get("name"), q.get("in")) != key);
                all.push(p);
            }
            for p in all {
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
                let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                let description = p
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                match location {
                    "body" if swagger => {
                        body = Some(Body {
                            kind: BodyKind::Json,
                            schema: p.get("schema").cloned().unwrap_or(json!({})),
                            required,
                        });
                    }
                    "formData" if swagger => {
                        let mut schema = inline_schema(p);
                        if let (Some(d), Value::Object(s)) = (&description, &mut schema) {
                            s.insert("description".into(), json!(d));
                        }
                        form.insert(name.clone(), schema);
                        if required {
                            form_required.push(json!(name));
                        }
                    }
                    other => {
                        let Some(place) = place(other) else { continue };
                        let schema = if swagger {
                            inline_schema(p)
                        } else {
                            p.get("schema").cloned().unwrap_or(json!({}))
                        };
                        params.push(Param {
                            name,
                            place,
                            required: required || place == Place::Path,
                            schema,
                            description,
                        });
                    }
                }
            }
            if !form.is_empty() {
                let consumes: Vec<String> = op
                    .get("consumes")
                    .and_then(Value::as_array)
                    .map(|c| {
                        c.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_else(|| consumes_default.clone());
                let kind = if consumes
                    .iter()
                    .any(|c| c.starts_with("application/x-www-form-urlencoded"))
                    || consumes.is_empty()
                {
                    BodyKind::Form
                } else {
                    BodyKind::Other(consumes.join(", "))
                };
                body = Some(Body {
                    kind,
                    schema: json!({ "type": "object", "properties": form, "required": form_required }),
                    required: !form_required.is_empty(),
                });
            }
            if !swagger {
                if let Some(request) = op.get("requestBody").map(|b| resolver.deref(b)) {
                    let required = request
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let content = request.get("content").and_then(Value::as_object);
                    let pick = |wanted: &dyn Fn(&str) -> bool| {
                        content.and_then(|c| c.iter().find(|(media, _)| wanted(media)))
                    };
                    body = if let Some((_, media)) =
                        pick(&|m| m == "application/json" || m.ends_with("+json"))
                    {
                        Some(Body {
                            kind: BodyKind::Json,
                            schema: media.get("schema").cloned().unwrap_or(json!({})),
                            required,
                        })
                    } else if let Some((_, media)) =
                        pick(&|m| m.starts_with("application/x-www-form-urlencoded"))
                    {
                        Some(Body {
                            kind: BodyKind::Form,
                            schema: media.get("schema").cloned().unwrap_or(json!({})),
                            required,
                        })
                    } else {
                        content.and_then(|c| c.keys().next()).map(|media| Body {
                            kind: BodyKind::Other(media.clone()),
                            schema: json!({}),
                            required,
                        })
                    };
                }
            }
            let mut statuses: Vec<u16> = op
                .get("responses")
                .and_then(Value::as_object)
                .map(|r| {
                    r.keys()
                        .filter_map(|k| k.parse::<u16>().ok())
                        .filter(|s| (200..300).contains(s))
                        .collect()
                })
                .unwrap_or_default();
            statuses.sort_unstable();
            ops.push(Op {
                id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                method: method.to_owned(),
                path: path.clone(),
                summary: op
                    .get("summary")
                    .or_else(|| op.get("description"))
                    .and_then(Value::as_str)
                    .map(super::schema::first_sentence),
                tags: op
                    .get("tags")
                    .and_then(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                params,
                body,
                statuses,
            });
        }
    }
    let schemes_root = if swagger {
        root.get("securityDefinitions")
    } else {
        root.pointer("/components/securitySchemes")
    };
    let mut schemes: Vec<(String, &Value)> = schemes_root
        .and_then(Value::as_object)
        .map(|s| {
            s.iter()
                .map(|(k, v)| (k.clone(), resolver.deref(v)))
                .collect()
        })
        .unwrap_or_default();
    schemes.sort_by_key(|(_, s)| super::auth::preference(s, swagger));
    Ok(Described {
        resolver,
        title: root
            .pointer("/info/title")
            .and_then(Value::as_str)
            .map(str::to_owned),
        server,
        ops,
        schemes,
        swagger,
    })
}
