//! The flow of a scenario as a diagram (Mermaid or Graphviz dot), for
//! `scenarist graph`, so that the people who own an automation can see its
//! logic: routes, loops, filters and `when` conditions on the edges.
//! It only reads the model; it never compiles templates nor runs anything.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::model::{Condition, RouterMode, Scenario, Step, StepKind, Trigger};
use crate::plan::Cond;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// Renders the flow of `scenario` (pure function of the model).
pub fn render(scenario: &Scenario, format: GraphFormat) -> String {
    let mut g = Graph::default();
    collect_ids(&scenario.steps, &mut g.step_ids);
    collect_ids(&scenario.on_failure, &mut g.step_ids);
    g.node(
        "start",
        &trigger_label(&scenario.trigger),
        Shape::Round,
        None,
    );
    let ends = g.chain(&scenario.steps, vec![("start".to_owned(), None)]);
    if !ends.is_empty() {
        // `end` is a keyword in Mermaid, so the node id differs from its label.
        g.node("done", "end", Shape::Round, None);
        g.connect(ends, "done");
    }
    if !scenario.on_failure.is_empty() {
        g.terminal("failed");
        g.node("on_failure", "on failure", Shape::Round, None);
        g.edge("failed", "on_failure", None, true);
        g.chain(&scenario.on_failure, vec![("on_failure".to_owned(), None)]);
    }
    match format {
        GraphFormat::Mermaid => g.mermaid(),
        GraphFormat::Dot => g.dot(scenario.name.as_str()),
    }
}

fn collect_ids<'a>(steps: impl IntoIterator<Item = &'a Step>, out: &mut BTreeSet<String>) {
    for step in steps {
        out.insert(step.id.to_string());
        collect_ids(step.children(), out);
    }
}

fn trigger_label(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Manual(_) => "manual".to_owned(),
        Trigger::Webhook(h) => {
            format!(
                "webhook {} /hooks/{}",
                h.method.as_str(),
                h.path.trim_matches('/')
            )
        }
        Trigger::Schedule(s) => {
            let when = match (&s.cron, &s.every) {
                (Some(c), _) => c.clone(),
                (_, Some(e)) => format!("every {e}"),
                _ => String::new(),
            };
            let tz = s.timezone.as_deref().map(|t| format!(" [{t}]"));
            format!("schedule {when}{}", tz.unwrap_or_default())
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Box,
    Round,
    Diamond,
    Point,
}

struct Node {
    id: String,
    label: String,
    shape: Shape,
    /// The loop cluster this node is drawn in, if any.
    cluster: Option<usize>,
}

struct Edge {
    from: String,
    to: String,
    label: Option<String>,
    dashed: bool,
}

#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Loop clusters: (title, parent cluster).
    clusters: Vec<(String, Option<usize>)>,
    current_cluster: Option<usize>,
    /// Every step id, so that join nodes (`s_<id>_end`) never take a step's node id.
    step_ids: BTreeSet<String>,
}

/// Loose ends: a node id and the label of the edge that will leave it.
type Ends = Vec<(String, Option<String>)>;

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

fn describe(condition: &Condition) -> String {
    short(&Cond::describe(condition), 60)
}

/// Adds `extra` under the label an edge already carries (a route name, `true`).
fn stack(label: &Option<String>, extra: &str) -> Option<String> {
    Some(match label {
        Some(l) => format!("{l}\n{extra}"),
        None => extra.to_owned(),
    })
}

impl Graph {
    fn node(&mut self, id: &str, label: &str, shape: Shape, cluster: Option<usize>) {
        let (id, label) = (id.to_owned(), label.to_owned());
        self.nodes.push(Node {
            id,
            label,
            shape,
            cluster,
        });
    }

    /// A shared end node (`filtered`, `failed`), drawn once, outside any loop.
    fn terminal(&mut self, id: &str) {
        if !self.nodes.iter().any(|n| n.id == id) {
            self.node(id, id, Shape::Round, None);
        }
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<&str>, dashed: bool) {
        let (from, to, label) = (from.to_owned(), to.to_owned(), label.map(str::to_owned));
        self.edges.push(Edge {
            from,
            to,
            label,
            dashed,
        });
    }

    fn connect(&mut self, ends: Ends, to: &str) {
        for (from, label) in ends {
            self.edge(&from, to, label.as_deref(), false);
        }
    }

    /// The join node after a router or loop: `s_<id>_end`, unless a step owns that id.
    fn join_node(&mut self, step: &Step) -> String {
        let mut suffix = "_end".to_owned();
        while self.step_ids.contains(&format!("{}{suffix}", step.id)) {
            suffix.push_str("_end");
        }
        let id = format!("s_{}{suffix}", step.id);
        self.node(&id, "", Shape::Point, self.current_cluster);
        id
    }

    /// Draws steps in sequence from `ends`; returns the loose ends after the last one.
    fn chain(&mut self, steps: &[Step], ends: Ends) -> Ends {
        steps.iter().fold(ends, |ends, step| self.step(step, ends))
    }

    fn step(&mut self, step: &Step, ends: Ends) -> Ends {
        let id = format!("s_{}", step.id);
        let (kind, detail) = match &step.kind {
            StepKind::Http(h) => {
                let target = h.url.as_deref().or(h.path.as_deref()).unwrap_or("");
                (
                    "http",
                    format!("{} {}", h.method.as_str(), short(target, 40)),
                )
            }
            StepKind::Filter(c) => ("filter", describe(c)),
            StepKind::Router(r) if r.mode == RouterMode::All => {
                ("router", "(all matching)".to_owned())
            }
            StepKind::Respond(r) => ("respond", r.status.to_string()),
            StepKind::Fail(f) => ("fail", short(&f.message, 40)),
            other => (other.name(), String::new()),
        };
        let label = format!("{}\n{kind} {detail}", step.id)
            .trim_end()
            .to_owned();
        let shape = match step.kind {
            StepKind::Router(_) => Shape::Diamond,
            _ => Shape::Box,
        };
        let when = step.when.as_ref().map(|c| format!("when: {}", describe(c)));
        let incoming: Ends = match &when {
            Some(w) => ends
                .iter()
                .map(|(from, l)| (from.clone(), stack(l, w)))
                .collect(),
            None => ends.clone(),
        };
        if let StepKind::ForEach(each) = &step.kind {
            let items = match &each.items {
                serde_json::Value::String(s) => s
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim()
                    .to_owned(),
                other => other.to_string(),
            };
            let title = format!("for each {} in {}", each.as_name, short(&items, 40));
            self.clusters.push((title, self.current_cluster));
            self.current_cluster = Some(self.clusters.len() - 1);
        }
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
            out.extend(ends.into_iter().map(|(from, l)| (from, stack(&l, "else"))));
        }
        out
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        self.mermaid_cluster(None, &mut out, 1);
        for e in &self.edges {
            let arrow = if e.dashed { "-.->" } else { "-->" };
            let label = e
                .label
                .as_deref()
                .map(|l| format!("|\"{}\"|", mermaid_text(l)));
            let label = label.unwrap_or_default();
            writeln!(out, "  {} {arrow}{label} {}", e.from, e.to).expect("write to string");
        }
        out
    }

    fn mermaid_cluster(&self, cluster: Option<usize>, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        for n in self.nodes.iter().filter(|n| n.cluster == cluster) {
            let (id, label) = (&n.id, mermaid_text(&n.label));
            let line = match n.shape {
                Shape::Box => format!("{id}[\"{label}\"]"),
                Shape::Round => format!("{id}([\"{label}\"])"),
                Shape::Diamond => format!("{id}{{\"{label}\"}}"),
                Shape::Point => format!("{id}((\" \"))"),
            };
            writeln!(out, "{pad}{line}").expect("write to string");
        }
        for (i, (title, parent)) in self.clusters.iter().enumerate() {
            if *parent == cluster {
                let title = mermaid_text(title);
                writeln!(out, "{pad}subgraph loop_{i}[\"{title}\"]").expect("write to string");
                self.mermaid_cluster(Some(i), out, depth + 1);
                writeln!(out, "{pad}end").expect("write to string");
            }
        }
    }

    fn dot(&self, name: &str) -> String {
        let mut out = format!("digraph \"{}\" {{\n  rankdir=TB;\n", dot_text(name));
        out.push_str("  node [shape=box, fontname=\"Helvetica\"];\n");
        self.dot_cluster(None, &mut out, 1);
        for e in &self.edges {
            let mut attrs = Vec::new();
            if let Some(l) = &e.label {
                attrs.push(format!("label=\"{}\"", dot_text(l)));
            }
            if e.dashed {
                attrs.push("style=dashed".to_owned());
            }
            let attrs = match attrs.is_empty() {
                true => String::new(),
                false => format!(" [{}]", attrs.join(", ")),
            };
            writeln!(out, "  \"{}\" -> \"{}\"{attrs};", e.from, e.to).expect("write to string");
        }
        out.push_str("}\n");
        out
    }

    fn dot_cluster(&self, cluster: Option<usize>, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        for n in self.nodes.iter().filter(|n| n.cluster == cluster) {
            let shape = match n.shape {
                Shape::Box => "box",
                Shape::Round => "ellipse",
                Shape::Diamond => "diamond",
                Shape::Point => "point",
            };
            let (id, label) = (&n.id, dot_text(&n.label));
            writeln!(out, "{pad}\"{id}\" [label=\"{label}\", shape={shape}];").expect("write");
        }
        for (i, (title, parent)) in self.clusters.iter().enumerate() {
            if *parent == cluster {
                let title = dot_text(title);
                writeln!(
                    out,
                    "{pad}subgraph cluster_{i} {{\n{pad}  label=\"{title}\";"
                )
                .expect("write to string");
                self.dot_cluster(Some(i), out, depth + 1);
                writeln!(out, "{pad}}}").expect("write to string");
            }
        }
    }
}

/// Text for inside a quoted Mermaid label: entity codes for `#`, `"`, `<`, `>`
/// (so that user text is never read as markup), `<br/>` for line breaks.
fn mermaid_text(text: &str) -> String {
    text.replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('\n', "<br/>")
}

/// Text for inside a quoted dot string.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        let path = std::path::Path::new("t.yaml");
        crate::load::load_str(path, yaml.to_owned())
            .unwrap()
            .scenario
    }

    const FLOW: &str = r##"name: deal-won
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
on_failure:
  - id: alert
    set: { z: 1 }
"##;

    /// Every `[`, `(` and `{` opened on a line is closed on it (labels included).
    fn balanced(line: &str) -> bool {
        let count = |c| line.matches(c).count();
        count('[') == count(']') && count('(') == count(')') && count('{') == count('}')
    }

    #[test]
    fn mermaid_shows_routes_loops_and_filters() {
        let out = render(&scenario(FLOW), GraphFormat::Mermaid);
        assert!(out.starts_with("flowchart TD\n"), "{out}");
        assert!(
            out.contains("start([\"webhook POST /hooks/crm/won\"])"),
            "{out}"
        );
        assert!(
            out.contains(
                "s_route -->|\"big: trigger.body.n gt 5<br/>when: {{ eq trigger.body.x 1 }}\"| s_a"
            ),
            "{out}"
        );
        assert!(
            out.contains("s_route -->|\"big: trigger.body.n gt 5<br/>else\"| s_route_end_end"),
            "{out}"
        );
        assert!(
            out.contains("s_route -->|\"other (fallback)\"| s_b"),
            "{out}"
        );
        assert!(
            out.contains("subgraph loop_0[\"for each item in trigger.body.list\"]"),
            "{out}"
        );
        assert!(out.contains("s_won -->|\"false\"| filtered"), "{out}");
        assert!(out.contains("s_won -->|\"true\"| s_route{"), "{out}");
        assert!(out.contains("failed -.-> on_failure"), "{out}");
        assert!(out.contains("#quot;#lt;b#gt;#quot;#35;f"), "{out}");
        assert!(!out.contains("  end(") && !out.contains("> end"), "{out}");
        assert!(out.lines().all(balanced), "{out}");
        // The loop node and its join sit inside the subgraph; terminals outside.
        let inner = out
            .split("subgraph")
            .nth(1)
            .unwrap()
            .split("\n  end")
            .next()
            .unwrap();
        assert!(inner.contains("s_each[") && inner.contains("s_c[") && !inner.contains("failed"));
    }

    #[test]
    fn dot_is_balanced_and_escaped() {
        let out = render(&scenario(FLOW), GraphFormat::Dot);
        assert!(
            out.starts_with("digraph \"deal \\\"won\\\"\" {\n  rankdir=TB;"),
            "{out}"
        );
        assert_eq!(out.matches('{').count(), out.matches('}').count());
        assert!(out
            .lines()
            .filter(|l| l.contains("->"))
            .all(|l| l.ends_with(';')));
        assert!(
            out.contains("\"failed\" -> \"on_failure\" [style=dashed];"),
            "{out}"
        );
        assert!(
            out.contains("subgraph cluster_0 {\n    label=\"for each item in"),
            "{out}"
        );
        assert!(out.contains("label=\"each\\nfor_each\""), "{out}");
    }

    #[test]
    fn triggers_modes_and_sequences() {
        let out = render(
            &scenario(
                "name: s\ntrigger: { schedule: { cron: \"0 9 * * 1\", timezone: Europe/Paris } }\n\
                 steps:\n  - id: r\n    router: { mode: all, routes: [ { name: x, steps: [] } ] }\n\
                 \x20 - id: last\n    set: { a: 1 }\n",
            ),
            GraphFormat::Mermaid,
        );
        assert!(out.contains("schedule 0 9 * * 1 [Europe/Paris]"), "{out}");
        assert!(
            out.contains("s_r{\"r<br/>router (all matching)\"}"),
            "{out}"
        );
        assert!(out.contains("s_r -->|\"x (fallback)\"| s_r_end"), "{out}");
        assert!(
            out.contains("s_last --> done") && out.contains("done([\"end\"])"),
            "{out}"
        );
        let manual = render(
            &scenario("name: m\nsteps: [ { id: a, set: { b: 1 } } ]\n"),
            GraphFormat::Dot,
        );
        assert!(
            manual.contains("\"start\" [label=\"manual\", shape=ellipse];"),
            "{manual}"
        );
        assert_eq!(
            render(&scenario(FLOW), GraphFormat::Dot),
            render(&scenario(FLOW), GraphFormat::Dot)
        );
    }

    #[test]
    fn dot_output_parses_when_graphviz_is_installed() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        else {
            return; // graphviz is not installed
        };
        let text = render(&scenario(FLOW), GraphFormat::Dot);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{}\n{text}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
}
