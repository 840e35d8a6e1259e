use super::*;
use serde_json::json;

fn hb() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    register(&mut hb);
    hb
}

fn data() -> Value {
    json!({"amount": "750", "obj": {"k": 1}, "a": [1, 2], "b": ["x"], "n": null,
           "s": "  Hé Ho  ", "flag": true, "when": "2026-03-29", "ts": 1774747800})
}

fn render(tpl: &str) -> Result<String, String> {
    hb().render_template(tpl, &data())
        .map_err(|e| e.to_string())
}

#[test]
fn renders_expected_values() {
    #[rustfmt::skip]
    let cases = [
        ("{{ json (add 1 2) }}", "3"),
        ("{{ add \"1.5\" 2 }}", "3.5"),
        ("{{ add 1 2 3 }}|{{ sub 5 7 }}|{{ mul 2 \"3\" 4 }}|{{ div 7 2 }}", "6|-2|24|3.5"),
        ("{{ json (div 6 3) }}|{{ json (mul 0.5 4) }}", "2|2"),
        ("{{ add 9223372036854775807 1 }}", "9.223372036854776e+18"),
        ("{{ round 2.675 2 }}|{{ round -2.5 }}|{{ round 1234 -2 }}|{{ round \"0.125\" 2 }}|{{ round 1.005 2.0 }}", "2.68|-3|1200|0.13|1.01"),
        ("{{ default missing.path \"x\" }}|{{ default n 1 }}|{{ default \"\" 2 }}|{{ default 0 3 }}", "x|1|2|0"),
        ("{{ json obj }}|{{ json missing }}|{{ json \"q\" }}|{{ json (json a) }}", "{\"k\":1}|null|\"q\"|\"[1,2]\""),
        ("{{ upper s }}|{{ lower \"AbC\" }}|[{{ trim s }}]|{{ upper n }}|{{ upper obj }}", "  HÉ HO  |abc|[Hé Ho]||{\"K\":1}"),
        ("{{ len a }}|{{ len \"héé\" }}|{{ len obj }}|{{ len n }}|{{ len missing }}", "2|3|1|0|0"),
        ("{{ eq amount 750 }}|{{ eq \"750\" \"750.0\" }}|{{ eq 1 1.0 }}|{{ eq \"-0.0\" 0 }}|{{ eq obj obj }}|{{ eq n missing }}", "true|false|true|true|true|true"),
        ("{{ ne 1 2 }}|{{ ne \"a\" \"a\" }}|{{ eq flag true }}|{{ eq \"1\" true }}", "true|false|true|false"),
        ("{{ gte amount 500 }}|{{ gt \"10\" \"9\" }}|{{ lt \"2026-01-02\" \"2026-01-10\" }}|{{ lte 3 3 }}", "true|true|true|true"),
        ("{{ gt \"b\" \"a\" }}|{{ lt 2 1.5 }}", "true|false"),
        ("{{ and 1 \"x\" flag }}|{{ and 1 0 }}|{{ or n \"\" a }}|{{ or (json n) }}|{{ not obj }}|{{ not missing }}", "true|false|true|true|false|true"),
        ("{{ concat \"a\" 1 n flag }}|{{ json (concat a b) }}|{{ concat obj }}", "a1true|[1,2,\"x\"]|{\"k\":1}"),
        ("{{ join (split \"a,b\" \",\") \"-\" }}|{{ join a }}|{{ json (split \"\" \",\") }}|{{ json (split \"ab\" \"\") }}", "a-b|1,2|[]|[\"a\",\"b\"]"),
        ("{{ replace \"a-b-c\" \"-\" \"+\" }}", "a+b+c"),
        ("{{ format_date \"2026-03-29T01:30:00Z\" \"%H:%M\" \"Europe/Paris\" }}", "03:30"),
        ("{{ format_date \"2026-03-29T00:30:00Z\" \"%H:%M %Z\" \"Europe/Paris\" }}", "01:30 CET"),
        ("{{ format_date when \"%d/%m/%Y %H:%M\" \"America/New_York\" }}", "29/03/2026 00:00"),
        ("{{ format_date ts \"%Y-%m-%dT%H:%M:%S\" }}|{{ format_date \"1774747800\" \"%s\" }}", "2026-03-29T01:30:00|1774747800"),
        ("{{ url_encode \"a b&c/é\" }}|{{ base64 \"hi\" }}", "a%20b%26c%2F%C3%A9|aGk="),
        ("{{ sha256 \"abc\" }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("{{ hmac_sha256 \"key\" \"The quick brown fox jumps over the lazy dog\" }}",
         "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"),
        ("{{#gt amount 100}}big{{else}}small{{/gt}}|{{#if (eq amount 750)}}yes{{/if}}", "big|yes"),
    ];
    for (tpl, want) in cases {
        assert_eq!(render(tpl).as_deref(), Ok(want), "template {tpl}");
    }
}

#[test]
fn reports_errors_naming_the_helper() {
    #[rustfmt::skip]
    let cases = [
        ("{{ div 1 0 }}", "helper `div`: division by zero"),
        ("{{ gt obj 1 }}", "helper `gt`: cannot compare {\"k\":1} with 1"),
        ("{{ lt missing 1 }}", "helper `lt`: cannot compare null with 1"),
        ("{{ gte 1 \"abc\" }}", "cannot compare 1 with \"abc\""),
        ("{{ add 1 \"abc\" }}", "helper `add`: expected a number, got \"abc\""),
        ("{{ and }}", "helper `and`: expected at least 1 parameter(s), got 0"),
        ("{{ add 1 }}", "helper `add`: expected at least 2 parameter(s), got 1"),
        ("{{ sub 1 2 3 }}", "helper `sub`: expected 2 parameter(s), got 3"),
        ("{{ add \"1e308\" \"1e308\" }}", "helper `add`: the result is not a finite number"),
        ("{{ round 1.5 0.5 }}", "helper `round`: digits must be"),
        ("{{ round \"1e300\" 15 }}", "helper `round`: the result is not a finite number"),
        ("{{ len 3 }}", "helper `len`: expected an array"),
        ("{{ join \"a\" }}", "helper `join`: expected an array"),
        ("{{ replace \"a\" \"\" \"b\" }}", "helper `replace`"),
        ("{{ format_date \"2026-01-01\" \"%Q\" }}", "helper `format_date`: invalid date format \"%Q\""),
        ("{{ now \"%Y %\" }}", "helper `now`: invalid date format"),
        ("{{ format_date \"yesterday\" \"%Y\" }}", "helper `format_date`: expected an RFC 3339"),
        ("{{ format_date \"1e20\" \"%Y\" }}", "helper `format_date`: expected an RFC 3339"),
        ("{{ format_date when \"%Y\" \"Mars/Olympus\" }}", "unknown timezone \"Mars/Olympus\""),
        ("{{ uuid 1 }}", "helper `uuid`: expected 0 parameter(s), got 1"),
        ("{{ add 1 2 x=1 }}", "helper `add`: named parameter `x` is not supported"),
    ];
    for (tpl, want) in cases {
        let err = render(tpl).expect_err(tpl);
        assert!(err.contains(want), "template {tpl}: {err}");
    }
}

#[test]
fn results_are_bounded_however_deep_the_calls_nest() {
    // Found by a hand-written input to the template fuzz target: each
    // nested `json` doubles the text, so this 40-level template asked for
    // terabytes before the limit.
    let nested = format!("{{{{ json {}1{} }}}}", "(json ".repeat(40), ")".repeat(40));
    let err = render(&nested).expect_err("too long");
    assert!(err.contains("helper `json`: the result would be"), "{err}");
    let big = "a".repeat(MAX_RESULT_BYTES / 2);
    let data = json!({ "big": big, "many": vec![big.as_str(); 3] });
    let cases = [
        (
            "{{ replace big \"a\" \"aaa\" }}",
            "helper `replace`: the result would be",
        ),
        ("{{ join many \"\" }}", "helper `join`: the result would be"),
        (
            "{{ concat big big big }}",
            "helper `concat`: the result would be",
        ),
    ];
    for (tpl, want) in cases {
        let err = hb().render_template(tpl, &data).expect_err(tpl).to_string();
        assert!(err.contains(want), "template {tpl}: {err}");
    }
    let native = HelperFn::find("json").expect("json");
    assert!(native.call(&[Value::String(big.repeat(3))]).is_err());
    assert_eq!(
        render("{{ replace \"abc\" \"b\" \"xyz\" }}").as_deref(),
        Ok("axyzc")
    );
}

#[test]
fn now_uuid_and_names() {
    let now = render("{{ now }}").unwrap();
    let parsed =
        DateTime::parse_from_rfc3339(&now).map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true));
    assert_eq!(parsed.as_deref(), Ok(now.as_str()));
    assert_eq!(render("{{ now \"%Y\" }}").unwrap().len(), 4);
    let id = uuid::Uuid::parse_str(&render("{{ uuid }}").unwrap());
    assert_eq!(id.map(|u| u.get_version_num()), Ok(4));
    let names: Vec<_> = SPECS.iter().map(|s| s.name).collect();
    assert_eq!(names, HELPER_NAMES);
}

#[test]
fn pick_keeps_the_keys_given_that_are_there() {
    let data = json!({ "input": { "email": "a@b.c", "name": null, "id": 7 } });
    let out = hb()
        .render_template(
            "{{ json (pick input \"email\" \"name\" \"phone\") }}",
            &data,
        )
        .unwrap();
    assert_eq!(out, r#"{"email":"a@b.c"}"#);
    let out = hb()
        .render_template("{{ json (pick nothing \"a\") }}", &data)
        .unwrap();
    assert_eq!(out, "{}");
    let err = hb()
        .render_template("{{ pick input.id \"a\" }}", &data)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected an object"), "{err}");
}

#[test]
fn find_row_finds_the_first_row_whose_cell_reads_the_value() {
    let data =
        json!({ "rows": [["email", "code"], ["a@b.c", "R1"], ["lee@x.y", 7], ["lee@x.y", "R3"]] });
    let find = |t: &str| hb().render_template(t, &data);
    assert_eq!(
        find("{{ json (find_row rows \"A\" \"lee@x.y\") }}").unwrap(),
        r#"{"row":3,"values":["lee@x.y",7]}"#
    );
    // A number from 1, and cells compared as text.
    assert_eq!(
        find("{{ json (find_row rows 2 \"7\") }}").unwrap(),
        r#"{"row":3,"values":["lee@x.y",7]}"#
    );
    assert_eq!(
        find("{{ json (find_row rows \"b\" \"none\") }}").unwrap(),
        "null"
    );
    assert_eq!(
        find("{{ json (find_row missing \"A\" \"x\") }}").unwrap(),
        "null"
    );
    assert_eq!(
        find("{{ json (find_row rows \"AA\" \"x\") }}").unwrap(),
        "null"
    );
    let err = find("{{ find_row rows 0 \"x\" }}").unwrap_err().to_string();
    assert!(err.contains("a column is a letter"), "{err}");
}
