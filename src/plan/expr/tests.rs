use super::jsonpath::nesting;
use super::*;
use serde_json::json;

fn eval(source: Value, data: Value) -> Result<Value, EvalError> {
    let expr = Expr::compile(&source).map_err(|e| EvalError(format!("{e:?}")))?;
    expr.eval(&Context::from(data))
}

#[test]
fn a_deeply_nested_jsonpath_is_refused_before_it_is_parsed() {
    // Found by the jsonpath fuzz target (a timeout): the parser's time
    // multiplies with each level, and seven of these took over a minute.
    let deep = format!("$.a[?{}@.c", "value(none_of((($.b[?".repeat(7));
    let err = Expr::compile_str(&deep).expect_err("too deep");
    assert!(err.contains("nest more than 10 deep"), "{err}");
    let fine = "$.trigger.body.items[?(@.price > 5 && @.name == 'a(b[c')].sku";
    assert!(Expr::compile_str(fine).is_ok());
    assert_eq!(nesting("$['a[(']"), 1);
}

#[test]
fn a_long_template_is_refused_before_handlebars_compiles_it() {
    // Found by a hand-written input to the template fuzz target: 3,000
    // nested `if` blocks (48 KB) took 7 s to compile, and the time grows
    // with the square of the length.
    let long = format!("{}x{}", "{{#if a}}".repeat(3000), "{{/if}}".repeat(3000));
    let err = Expr::compile_str(&long).expect_err("too long");
    assert!(
        err.contains("a template is limited to 16384 bytes"),
        "{err}"
    );
    let fits = format!("{}x{}", "{{#if a}}".repeat(500), "{{/if}}".repeat(500));
    assert!(Expr::compile_str(&fits).is_ok());
}

#[test]
fn a_single_path_keeps_its_type() {
    let data = json!({"trigger": {"body": {"amount": 750, "tags": ["a"]}}});
    assert_eq!(
        eval(json!("{{ trigger.body.amount }}"), data.clone()).unwrap(),
        json!(750)
    );
    assert_eq!(
        eval(json!("{{trigger.body.tags}}"), data.clone()).unwrap(),
        json!(["a"])
    );
    assert_eq!(
        eval(json!("n={{ trigger.body.amount }}"), data).unwrap(),
        json!("n=750")
    );
}

#[test]
fn a_single_helper_call_keeps_its_type() {
    let data = json!({"a": 2});
    assert_eq!(
        eval(json!("{{ add a 3 }}"), data.clone()).unwrap(),
        json!(5)
    );
    assert_eq!(eval(json!("{{ gte a 1 }}"), data).unwrap(), json!(true));
}

#[test]
fn block_helpers_still_render_through_handlebars() {
    let data = json!({"vip": true, "name": "Ann", "n": 2});
    assert_eq!(
        eval(json!("{{#if vip}}VIP {{/if}}{{ name }}"), data.clone()).unwrap(),
        json!("VIP Ann")
    );
    assert_eq!(
        eval(json!("{{#gt n 1}}many{{else}}one{{/gt}}"), data.clone()).unwrap(),
        json!("many")
    );
    // The native path renders the same text as Handlebars for scalars.
    assert_eq!(
        eval(
            json!("{{ name }}: {{ n }} {{ vip }} {{ upper (trim name) }}"),
            data
        )
        .unwrap(),
        json!("Ann: 2 true ANN")
    );
}

#[test]
fn maps_and_lists_are_built_leaf_by_leaf() {
    let data = json!({"x": {"id": 7, "name": "Ann \"the\" {{ boss }}"}});
    let out = eval(
        json!({"id": "{{ x.id }}", "who": ["{{ x.name }}", 1]}),
        data,
    )
    .unwrap();
    // The name arrives from outside and is never evaluated as a template.
    assert_eq!(out, json!({"id": 7, "who": ["Ann \"the\" {{ boss }}", 1]}));
}

#[test]
fn missing_paths_are_errors_that_name_the_path() {
    let data = json!({"trigger": {"body": {"amount": 1, "email": "a@b"}}});
    let err = eval(json!("{{ trigger.body.amout }}"), data.clone()).unwrap_err();
    assert_eq!(err.0, "`trigger.body.amout` is missing; did you mean `trigger.body.amount`? (`trigger.body` has: amount, email)");
    let err = eval(json!("x {{ trigger.body.nope }}"), data).unwrap_err();
    assert!(
        err.0.contains("`trigger.body.nope` is missing"),
        "{}",
        err.0
    );
}

#[test]
fn jsonpath_definite_and_wildcard() {
    let data = json!({"steps": {"list": {"body": [{"id": 1}, {"id": 2}]}}});
    assert_eq!(
        eval(json!("$.steps.list.body[1].id"), data.clone()).unwrap(),
        json!(2)
    );
    assert_eq!(
        eval(json!("$.steps.list.body[9].id"), data.clone()).unwrap(),
        json!(null)
    );
    assert_eq!(
        eval(json!("$.steps.list.body[*].id"), data).unwrap(),
        json!([1, 2])
    );
}

#[test]
fn syntax_errors_are_reported_at_their_leaf() {
    let errors = Expr::compile(&json!({"a": "{{ x ", "b": ["$.[", "ok"]})).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, ".a");
    assert!(errors[0].1.contains("template"), "{}", errors[0].1);
    assert_eq!(errors[1].0, ".b[0]");
    assert!(errors[1].1.contains("invalid JSONPath"), "{}", errors[1].1);
}

#[test]
fn references_are_collected_from_templates_and_paths() {
    let expr = Expr::compile(
        &json!({"a": "{{ default steps.find.body.url vars.fallback }}", "b": "$.env.TOKEN"}),
    )
    .unwrap();
    let mut refs = Vec::new();
    expr.references(&mut refs);
    assert!(
        refs.contains(&vec![
            "steps".into(),
            "find".into(),
            "body".into(),
            "url".into()
        ]),
        "{refs:?}"
    );
    assert!(refs.contains(&vec!["vars".into(), "fallback".into()]));
    assert!(refs.contains(&vec!["env".into(), "TOKEN".into()]));
}

#[test]
fn an_expression_that_reads_the_clock_or_draws_an_id_is_not_repeatable() {
    let repeatable = |source: Value| Expr::compile(&source).unwrap().is_repeatable();
    assert!(repeatable(json!("{{ lower trigger.body.email }}")));
    assert!(repeatable(
        json!({ "a": "{{ steps.x.id }}", "b": ["$.trigger.body", 3] })
    ));
    assert!(repeatable(json!("known {{ trigger.body.nowhere }}")));
    assert!(!repeatable(json!("{{ now }}")));
    assert!(!repeatable(json!({ "list": ["x", "id-{{ uuid }}"] })));
    assert!(!repeatable(json!("{{ format_date (now) \"%Y\" }}")));
}

#[test]
fn a_helper_called_without_arguments_reads_no_path() {
    // `{{ now }}` and `{{ uuid }}` were refused as "unknown name `now`".
    for source in [
        "{{ now }}",
        "at {{ uuid }}",
        "{{ format_date (now) \"%Y\" }}",
    ] {
        let mut refs = Vec::new();
        Expr::compile_str(source).unwrap().references(&mut refs);
        assert!(refs.is_empty(), "{source}: {refs:?}");
    }
    let mut refs = Vec::new();
    Expr::compile_str("{{ lower now }}")
        .unwrap()
        .references(&mut refs);
    assert_eq!(refs, [["now"]], "an argument named like a helper is a path");
}
