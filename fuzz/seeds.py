#!/usr/bin/env python3
"""Writes the seed corpora of the template, jsonpath, condition and webhook
targets from the scenario files (scenarios/, tests/fixtures/) and their test
files: every template string, JSONPath query and condition they hold, and each
test case's trigger as a request. The load target's seeds are the files
themselves, copied by .ci/fuzz at each run. Also writes the dictionaries
(fuzz/dict/) from the scenario schema and the helper names. A maintainer's tool, not run by CI;
needs PyYAML. Run it from the repository root: python3 fuzz/seeds.py"""

import glob
import hashlib
import json
import os
import re

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "fuzz", "corpus")
# A trigger body for the inputs that carry one (after a NUL byte).
BODY = json.dumps({"email": " Ada@Example.com ", "amount": "750", "items": [{"sku": "a", "price": 3}, {"sku": "b", "price": 12}],
                   "deal": {"id": "d-1", "stage": "closed_won", "amount": 1200}})


def documents():
    for pattern in ("scenarios/*.yaml", "tests/fixtures/**/*.yaml"):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
            try:
                with open(path, encoding="utf-8") as f:
                    yield path, yaml.safe_load(f)
            except (yaml.YAMLError, UnicodeDecodeError):
                pass  # invalid fixtures are load seeds only


def walk(node, key=None):
    yield key, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, key)


def write(target, texts, limit):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if "-" not in name:  # named seeds (regressions, by hand) stay
            os.remove(os.path.join(folder, name))
    for text in sorted(set(texts))[:limit]:
        data = text.encode("utf-8")
        with open(os.path.join(folder, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
            f.write(data)


def quoted(text):
    """A libFuzzer dictionary entry: printable ASCII as is, the rest as \\xNN."""
    out = ""
    for b in text.encode("utf-8"):
        c = chr(b)
        out += "\\" + c if c in '"\\' else c if 32 <= b < 127 else f"\\x{b:02x}"
    return f'"{out}"'


def write_dict(target, comment, entries):
    lines = [f"# {comment}"] + [quoted(e) for e in dict.fromkeys(entries)]
    with open(os.path.join(ROOT, "fuzz", "dict", f"{target}.dict"), "w") as f:
        f.write("\n".join(lines) + "\n")


YAML_SYNTAX = ["\n", ": ", "- ", "{", "}", "[", "]", ", ", '"', "'", "&a ", "*a", "!!str ", "|\n", ">-\n",
               "---\n", "...\n", "? ", "<<: ", "#", "  "]
VALUES = ["{{ ", " }}", "{{ trigger.body.", "{{ steps.", "{{ vars.", "{{ env.", "$.trigger.body", "10s", "500ms",
          "1h", "* * * * *", "Europe/Paris", "true", "false", "null", "~"]
CONDITION_KEYS = ["all", "any", "not", "value", "equals", "not_equals", "in", "not_in", "contains", "not_contains",
                  "starts_with", "ends_with", "matches", "gt", "gte", "lt", "lte", "exists", "empty"]


def dictionaries():
    with open(os.path.join(ROOT, "schemas", "scenario.schema.json")) as f:
        schema = json.load(f)
    keys, enums = set(), set()
    for key, node in walk(schema):
        if key == "properties" and isinstance(node, dict):
            keys.update(node)
        if key == "enum" and isinstance(node, list):
            enums.update(e for e in node if isinstance(e, str))
    write_dict("load", "YAML keys and values of scenario files (schemas/scenario.schema.json), for the load target",
               [k + ":" for k in sorted(keys)] + sorted(enums) + YAML_SYNTAX + VALUES)
    write_dict("condition", "condition keys and YAML syntax, for the condition target",
               [k + ": " for k in CONDITION_KEYS] + YAML_SYNTAX + VALUES + ["^[a-z]+$", "(?i)", "\\d{3}", "\0"])
    with open(os.path.join(ROOT, "src", "plan", "helpers.rs")) as f:
        source = f.read()
    names = re.findall(r'"(\w+)"', source[source.index("HELPER_NAMES"):source.index("];")])
    write_dict("template", "Handlebars syntax, scenarist's helpers (src/plan/helpers.rs) and context names",
               [n + " " for n in names] + [
                   "{{", "}}", "{{{", "}}}", "{{#", "{{/", "{{^", "{{else}}", "{{!", "{{!--", "--}}", "{{>", "{{~",
                   "~}}", "(", ")", '"', "'", ".", "[", "]", "@index", "@key", "@root", "this", "../", "as |x|", "=",
                   "#if", "#each", "#with", "#unless", "lookup", "log", "trigger.body.", "steps.", "vars.", "env.",
                   "item", "%Y-%m-%d", "%H:%M %Z", "Europe/Paris", "1e308", "-0.0", "9223372036854775807", "\0"])
    write_dict("jsonpath", "JSONPath (RFC 9535) syntax and names of the context, for the jsonpath target", [
        "$", ".", "..", "[", "]", "*", "?", "@", "(", ")", "'", '"', ":", ",", "-1", "==", "!=", "<", "<=", ">",
        ">=", "&&", "||", "!", "length(", "count(", "match(", "search(", "value(", "true", "false", "null",
        "trigger", "body", "steps", "items", "sku", "price", "\0", '{"a":', "[1,", '"x"', "1e3", "}"])
    write_dict("webhook", "request syntax (query, headers, JSON), for the webhook target", [
        "\n", "\n\n", ": ", "&", "=", "+", "%", "%20", "%E2%82%AC", "%zz", "x-token", "X-Token: t0ken",
        "content-type", "authorization", "cookie", "x-page", "source=", '{"email": "', '@example.com"',
        '"amount": ', '"tags": [', "{", "}", "[", "]", '"', ",", "null", "true", "1e400", '"\\ud800"'])


def main():
    templates, paths, conditions, requests = [], [], [], []
    for path, doc in documents():
        for key, node in walk(doc):
            if isinstance(node, str) and "{{" in node:
                templates.append(node)
            if isinstance(node, str) and node.startswith("$"):
                paths.append(node)
                paths.append(node + "\0" + BODY)
            if key in ("when", "filter") and isinstance(node, (str, bool, dict)):
                conditions.append(yaml.safe_dump(node, default_flow_style=None, allow_unicode=True))
            if key == "trigger" and isinstance(node, dict) and "body" in node and path.endswith(".test.yaml"):
                query = "&".join(f"{k}={v}" for k, v in (node.get("query") or {}).items())
                headers = "".join(f"{k}: {v}\n" for k, v in (node.get("headers") or {}).items())
                requests.append(f"{query}\n{headers}\n{json.dumps(node['body'])}")
    # The query forms the scenarios do not use yet (RFC 9535).
    paths += [q + "\0" + BODY for q in (
        "$.trigger.body.items[?@.price > 5].sku", "$..sku", "$.trigger.body.items[-1:]",
        "$.trigger.body.items[0:2:1]['sku','price']", "$.trigger.body.items[?length(@.sku) == 1]",
        "$.trigger.body.items[?match(@.sku, '[a-z]')]", "$.trigger.body.items[?search(@.sku, 'b')]",
        "$.trigger.body.deal[?@ == 'closed_won']", "$.trigger.body.items[?count(@.*) > 1]",
        "$.trigger.body.items[?!@.missing && (@.price < 10 || @.sku != 'b')]", "$.trigger.*.deal.amount",
        "$[\"trigger\"][\"body\"][\"email\"]", "$.trigger.body.items[?value(@..price) >= 3]",
    )]
    templates += [t + "\0" + BODY for t in templates[:10]]
    conditions += [c + "\0" + BODY for c in conditions[:10]]
    requests += [
        "source=form&page=2&a+b=c%20d&flag\ncontent-type: application/json\nx-token: t0ken\nx-page: 3\n\n"
        '{"email": "Ada@Example.com", "amount": "12", "tags": ["x"]}',
        "\nX-Token: t0ken\n\n",
        "%zz=%E2%82%AC&&=&x=1&x=2\nx-page: \xe9\n\n{\"email\": \"a@b.co\"}",
    ]
    write("template", templates, 80)
    write("jsonpath", paths, 40)
    write("condition", conditions, 60)
    write("webhook", requests, 40)
    dictionaries()


if __name__ == "__main__":
    main()
