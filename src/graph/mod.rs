//! The flow of a scenario as a diagram (Mermaid, Graphviz dot or SVG), for
//! `scenarist graph`, so that the people who own an automation can see its
//! logic: routes, loops, filters and `when` conditions on the edges.
//! It only reads the model; it never compiles templates nor runs anything.
//! The model becomes one [`Graph`]; each format is a writer over it (the SVG
//! one, with its own layout, lives in [`svg`] and [`layout`]).

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::model::{Condition, RouterMode, Scenario, Step, StepKind, Trigger};
use crate::plan::Cond;

mod layout;
mod svg;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    /// A standalone SVG drawn here, so a page can show it without JavaScript.
    Svg,
}

/// The text formats, which Mermaid or Graphviz lay out themselves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    Mermaid,
    Dot,
}

/// Renders the flow of `scenario` (pure function of the model).
pub fn render(scenario: &Scenario, format: GraphFormat) -> String {
    let g = flow(scenario);
    let name = scenario.name.as_str();
    match format {
        GraphFormat::Mermaid => g.write(Text::Mermaid, name),
        GraphFormat::Dot => g.write(Text::Dot, name),
        GraphFormat::Svg => svg::write(&g, name),
    }
}

/// The nodes, edges and loop clusters of `scenario`, the same for every format.
fn flow(scenario: &Scenario) -> Graph {
    let mut g = Graph::default();
    collect_ids(&scenario.steps, &mut g.step_ids);
    collect_ids(&scenario.on_failure, &mut g.step_ids);
    let trigger = trigger_label(&scenario.trigger);
    g.node("start", &trigger, ROUND, None);
    let ends = g.chain(&scenario.steps, vec![("start".to_owned(), None)]);
    if !ends.is_empty() {
        // `end` is a keyword in Mermaid, so this node's id differs from its label.
        g.node("done", "end", ROUND, None);
        g.connect(ends, "done");
    }
    if !scenario.on_failure.is_empty() {
        g.terminal("failed");
        g.node("on_failure", "on failure", ROUND, None);
        g.edge("failed", "on_failure", None, true);
        g.chain(&scenario.on_failure, vec![("on_failure".to_owned(), None)]);
    }
    g
}

fn collect_ids<'a>(steps: impl IntoIterator<Item = &'a Step>, out: &mut BTreeSet<String>) {
    for step in steps {
        out.insert(step.id.to_string());
        collect_ids(step.children(), out);
    }
}

fn trigger_label(trigger: &Trigger) -> String {
    trigger.describe()
}

/// How a node is drawn: Mermaid brackets around the label, and the dot shape.
type Shape = (&'static str, &'static str, &'static str);
const BOX: Shape = ("[", "]", "box");
const ROUND: Shape = ("([", "])", "ellipse");
const DIAMOND: Shape = ("{", "}", "diamond");
const POINT: Shape = ("((", "))", "point");

/// A node: id, label, shape, and the loop cluster it is drawn in.
struct Node(String, String, Shape, Option<usize>);

/// An edge: from, to, label, dashed.
struct Edge(String, String, Option<String>, bool);

#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Loop clusters: (title, parent cluster).
    clusters: Vec<(String, Option<usize>)>,
    current_cluster: Option<usize>,
    /// Every step id, so that a join node (`s_<id>_end`) never takes a step's id.
    step_ids: BTreeSet<String>,
}

/// Loose ends: a node id and the label of the edge that will leave it.
type Ends = Vec<(String, Option<String>)>;

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    format!("{}…", text.chars().take(max).collect::<String>())
}

fn describe(condition: &Condition) -> String {
    short(&Cond::describe(condition), 60)
}

/// Adds `extra` under the label an edge already carries (a route name, `true`).
fn stack(label: &Option<String>, extra: &str) -> Option<String> {
    let above = label.as_ref().map(|l| format!("{l}\n"));
    Some(format!("{}{extra}", above.unwrap_or_default()))
}

impl Graph {
    fn node(&mut self, id: &str, label: &str, shape: Shape, cluster: Option<usize>) {
        let (id, label) = (id.to_owned(), label.to_owned());
        self.nodes.push(Node(id, label, shape, cluster));
    }

    /// A shared end node (`filtered`, `failed`), drawn once, outside any loop.
    fn terminal(&mut self, id: &str) {
        if !self.nodes.iter().any(|n| n.0 == id) {
            self.node(id, id, ROUND, None);
        }
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<&str>, dashed: bool) {
        let (from, to, label) = (from.to_owned(), to.to_owned(), label.map(str::to_owned));
        self.edges.push(Edge(from, to, label, dashed));
    }

    fn connect(&mut self, ends: Ends, to: &str) {
        for (from, label) in ends {
            self.edge(&from, to, label.as_deref(), false);
        }
    }

    /// The join node after a router or loop: `s_<id>_end`, unless a step owns that id.
    fn join_node(&mut self, step: &Step) -> String {
        let mut id = format!("{}_end", step.id);
        while self.step_ids.contains(&id) {
            id.push_str("_end");
        }
        let id = format!("s_{id}");
        self.node(&id, " ", POINT, self.current_cluster);
        id
    }

    /// Draws steps in sequence from `ends`; returns the loose ends after the last one.
    fn chain(&mut self, steps: &[Step], ends: Ends) -> Ends {
        steps.iter().fold(ends, |ends, step| self.step(step, ends))
    }

    fn step(&mut self, step: &Step, ends: Ends) -> Ends {
        let id = format!("s_{}", step.id);
        let detail = match &step.kind {
            StepKind::Http(h) => {
                let target = h.url.as_deref().or(h.path.as_deref()).unwrap_or("");
                format!(" {} {}", h.method.as_str(), short(target, 40))
            }
            StepKind::Filter(c) => format!(" {}", describe(c)),
            StepKind::Router(r) if r.mode == RouterMode::All => " (all matching)".to_owned(),
            StepKind::Respond(r) => format!(" {}", r.status),
            StepKind::Fail(f) => format!(" {}", short(&f.message, 40)),
            StepKind::Store(s) => {
                let verb = [
                    ("get", &s.get),
                    ("put", &s.put),
                    ("delete", &s.delete),
                    ("increment", &s.increment),
                ]
                .into_iter()
                .find(|(_, key)| key.is_some())
                .map(|(verb, _)| verb)
                .unwrap_or("");
                format!(" {verb} {}", s.name)
            }
            StepKind::WaitFor(w) => format!(
                " {} [{}] up to {}",
                w.event,
                short(w.key.trim_matches(['{', '}', ' ']), 30),
                w.timeout
            ),
            StepKind::Emit(e) => format!(
                " {} [{}]",
                e.event,
                short(e.key.trim_matches(['{', '}', ' ']), 30)
            ),
            _ => String::new(),
        };
        let kind = match &step.kind {
            StepKind::Uses(uses) => uses.uses.as_str(),
            other => other.name(),
        };
        let label = format!("{}\n{kind}{detail}", step.id);
        let when = step.when.as_ref().map(|c| format!("when: {}", describe(c)));
        let incoming: Ends = match &when {
            Some(w) => ends.iter().map(|(f, l)| (f.clone(), stack(l, w))).collect(),
            None => ends.clone(),
        };
        if let StepKind::ForEach(each) = &step.kind {
            let items = match &each.items {
                serde_json::Value::String(s) => s.trim_matches(['{', '}', ' ']).to_owned(),
                other => other.to_string(),
            };
            let title = format!("for each {} in {}", each.as_name, short(&items, 40));
            self.clusters.push((title, self.current_cluster));
            self.current_cluster = Some(self.clusters.len() - 1);
        }
        let shape = match step.kind {
            StepKind::Router(_) => DIAMOND,
            _ => BOX,
        };
        self.node(&id, &label, shape, self.current_cluster);
        self.connect(incoming, &id);
        let mut out: Ends = match &step.kind {
            StepKind::ForEach(each) => {
                let inner = self.chain(&each.steps, vec![(id.clone(), None)]);
                let end = self.join_node(step);
                self.connect(inner, &end);
                self.edge(&end, &id, Some("next item"), true);
                self.current_cluster = self.clusters[self.current_cluster.expect("in loop")].1;
                vec![(end, None)]
            }
            StepKind::Router(router) => {
                let mut joined = Vec::new();
                for route in &router.routes {
                    let label = match &route.when {
                        Some(c) => format!("{}: {}", route.name, describe(c)),
                        None => format!("{} (fallback)", route.name),
                    };
                    joined.extend(self.chain(&route.steps, vec![(id.clone(), Some(label))]));
                }
                let end = self.join_node(step);
                self.connect(joined, &end);
                vec![(end, None)]
            }
            StepKind::Filter(_) => {
                self.terminal("filtered");
                self.edge(&id, "filtered", Some("false"), false);
                vec![(id.clone(), Some("true".to_owned()))]
            }
            StepKind::Fail(_) => {
                self.terminal("failed");
                self.edge(&id, "failed", None, false);
                Vec::new()
            }
            _ => vec![(id.clone(), None)],
        };
        if when.is_some() {
            out.extend(ends.into_iter().map(|(f, l)| (f, stack(&l, "else"))));
        }
        out
    }

    fn write(&self, format: Text, name: &str) -> String {
        let mut out = match format {
            Text::Mermaid => "flowchart TD\n".to_owned(),
            Text::Dot => format!(
                "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n",
                escape(format, name)
            ),
        };
        self.write_cluster(format, None, &mut out, 1);
        for Edge(from, to, label, dashed) in &self.edges {
            let line = match format {
                Text::Mermaid => {
                    let arrow = if *dashed { "-.->" } else { "-->" };
                    let label = label.as_deref().map(|l| escape(format, l));
                    let label = label.map(|l| format!("|\"{l}\"|")).unwrap_or_default();
                    format!("{from} {arrow}{label} {to}")
                }
                Text::Dot => {
                    let label = label.as_deref().map(|l| escape(format, l));
                    let label = label.map(|l| format!("label=\"{l}\""));
                    let style = dashed.then(|| "style=dashed".to_owned());
                    let attrs: Vec<String> = label.into_iter().chain(style).collect();
                    let attrs = match attrs.is_empty() {
                        true => String::new(),
                        false => format!(" [{}]", attrs.join(", ")),
                    };
                    format!("\"{from}\" -> \"{to}\"{attrs};")
                }
            };
            writeln!(out, "  {line}").expect("write to string");
        }
        if format == Text::Dot {
            out.push_str("}\n");
        }
        out
    }

    /// Writes the nodes of loop cluster `at` (None: top level), then its sub-clusters.
    fn write_cluster(&self, f: Text, at: Option<usize>, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        for Node(id, label, (open, close, shape), _) in self.nodes.iter().filter(|n| n.3 == at) {
            let l = escape(f, label);
            let line = match f {
                Text::Mermaid => format!("{id}{open}\"{l}\"{close}"),
                Text::Dot => format!("\"{id}\" [label=\"{l}\", shape={shape}];"),
            };
            writeln!(out, "{pad}{line}").expect("write to string");
        }
        for (i, (title, parent)) in self.clusters.iter().enumerate() {
            if *parent == at {
                let t = escape(f, title);
                let (open, close) = match f {
                    Text::Mermaid => (format!("subgraph loop_{i}[\"{t}\"]"), "end"),
                    Text::Dot => (format!("subgraph cluster_{i} {{ label=\"{t}\";"), "}"),
                };
                writeln!(out, "{pad}{open}").expect("write to string");
                self.write_cluster(f, Some(i), out, depth + 1);
                writeln!(out, "{pad}{close}").expect("write to string");
            }
        }
    }
}

/// Text for a quoted label. Mermaid: entity codes for `#`, `"`, `<`, `>`, `|` and
/// backticks (user text is never read as markup), `<br/>` for line breaks. Dot: `\`
/// escapes, `\n` for line breaks.
fn escape(format: Text, text: &str) -> String {
    let codes: &[(char, &str)] = match format {
        Text::Mermaid => &[
            ('#', "#35;"),
            ('"', "#quot;"),
            ('<', "#lt;"),
            ('>', "#gt;"),
            ('|', "#124;"),
            ('`', "#96;"),
        ],
        Text::Dot => &[('\\', "\\\\"), ('"', "\\\"")],
    };
    let text = codes
        .iter()
        .fold(text.to_owned(), |t, (c, code)| t.replace(*c, code));
    let newline = match format {
        Text::Mermaid => "<br/>",
        Text::Dot => "\\n",
    };
    text.replace('\n', newline)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn scenario(yaml: &str) -> Scenario {
        let loaded = crate::load::load_str(std::path::Path::new("t.yaml"), yaml.to_owned());
        loaded.unwrap().scenario
    }

    pub(super) fn graph(yaml: &str, format: GraphFormat) -> String {
        render(&scenario(yaml), format)
    }

    fn has_all(out: &str, wanted: &[&str]) {
        for want in wanted {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
    }

    pub(super) const FLOW: &str = r##"name: deal-won
trigger: { webhook: { path: crm/won } }
steps:
  - id: won
    filter: { value: "{{ trigger.body.stage }}", equals: won }
  - id: route
    router:
      routes:
        - name: big
          when: { value: "{{ trigger.body.n }}", gt: 5 }
          steps: [ { id: a, when: "{{ eq trigger.body.x 1 }}", set: { x: 1 } } ]
        - name: other
          steps: [ { id: b, http: { method: POST, url: "https://x.test/a?q=\"<b>\"#f" } } ]
  - id: each
    for_each: { items: "{{ trigger.body.list }}", steps: [ { id: c, set: { y: 1 } } ] }
  - id: route_end
    fail: { message: "bad {{ item }}" }
on_failure: [ { id: alert, set: { z: 1 } } ]
"##;

    #[test]
    fn mermaid_shows_routes_loops_and_filters() {
        let out = graph(FLOW, GraphFormat::Mermaid);
        assert!(out.starts_with("flowchart TD\n"), "{out}");
        let wanted = [
            "start([\"webhook POST /hooks/crm/won\"])",
            "s_route -->|\"big: trigger.body.n gt 5<br/>when: {{ eq trigger.body.x 1 }}\"| s_a\n",
            "s_route -->|\"big: trigger.body.n gt 5<br/>else\"| s_route_end_end\n",
            "s_route -->|\"other (fallback)\"| s_b\n",
            "subgraph loop_0[\"for each item in trigger.body.list\"]",
            "s_each_end -.->|\"next item\"| s_each\n",
            "s_won -->|\"false\"| filtered\n",
            "s_won -->|\"true\"| s_route\n",
            "s_route_end --> failed\n",
            "failed -.-> on_failure\n",
            "#quot;#lt;b#gt;#quot;#35;f",
        ];
        has_all(&out, &wanted);
        assert!(
            !out.contains("done"),
            "this flow always fails: no end\n{out}"
        );
        for line in out.lines() {
            let n = |c| line.matches(c).count();
            let balanced = n('[') == n(']') && n('(') == n(')') && n('{') == n('}');
            assert!(balanced, "{line}");
        }
        // The loop's nodes sit inside its subgraph, the shared terminals outside.
        let inner = &out[out.find("subgraph").unwrap()..out.find("\n  end\n").unwrap()];
        assert!(inner.contains("s_each[") && inner.contains("s_c[") && !inner.contains("failed"));
    }

    #[test]
    fn dot_is_balanced_and_escaped() {
        let out = graph(FLOW, GraphFormat::Dot);
        let head =
            "digraph \"deal-won\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n";
        assert!(out.starts_with(head), "{out}");
        assert_eq!(out.matches('{').count(), out.matches('}').count());
        let edges = out.lines().filter(|l| l.contains("->"));
        assert!(edges.clone().count() > 10 && edges.clone().all(|l| l.ends_with(';')));
        let wanted = [
            "\"failed\" -> \"on_failure\" [style=dashed];",
            "subgraph cluster_0 { label=\"for each item in trigger.body.list\";",
            "label=\"each\\nfor_each\"",
            "q=\\\"<b>\\\"#f",
            "\"s_route_end_end\" [label=\" \", shape=point];",
        ];
        has_all(&out, &wanted);
        assert_eq!(out, graph(FLOW, GraphFormat::Dot), "deterministic");
    }

    #[test]
    fn triggers_and_router_modes() {
        let yaml = "name: s\ntrigger: { schedule: { cron: \"0 9 * * 1\", timezone: Europe/Paris } }
steps:\n  - id: r\n    router: { mode: all, routes: [ { name: x, steps: [] } ] }
  - id: last\n    set: { a: 1 }\n";
        let wanted = [
            "start([\"schedule 0 9 * * 1 (Europe/Paris)\"])",
            "s_r{\"r<br/>router (all matching)\"}",
            "s_r -->|\"x (fallback)\"| s_r_end\n",
            "s_r_end --> s_last\n",
            "s_last --> done\n",
            "done([\"end\"])",
        ];
        has_all(&graph(yaml, GraphFormat::Mermaid), &wanted);
        let manual = "name: m\nsteps: [ { id: a, set: { b: 1 } } ]\n";
        let manual = graph(manual, GraphFormat::Dot);
        has_all(&manual, &["\"start\" [label=\"manual\", shape=ellipse];"]);
    }
}
