//! The SVG writer: the flow drawn on the server, so that the daemon's pages can
//! show it inline with no JavaScript (no Mermaid in the browser). Positions
//! come from [`layout`](super::layout); this module only turns them into markup.
//!
//! The markup is meant to be both styled and trusted: every node is a
//! `<g class="node step|terminal|join" data-node="ID">` and every edge a
//! `<path class="edge" data-from="ID" data-to="ID">`, so a page's CSS can
//! restyle them and its code can highlight a step; presentation attributes
//! make it look right standalone too. Labels come from the scenario's YAML,
//! so all text goes through [`escape`]: an author cannot inject markup.

use std::fmt::{self, Display, Write};

use super::layout::{layout, Rect, Route, LINE_H};
use super::{Graph, Node, DIAMOND, POINT, ROUND};

/// Escapes text for XML content and attribute values. Characters that XML
/// forbids even as references (most C0 controls) become U+FFFD, so that a
/// strict parser never rejects the page.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate, to a tenth of a pixel: short, and the same on every platform.
#[derive(Clone, Copy)]
struct N(f64);

impl Display for N {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `+ 0.0` turns -0 into 0.
        write!(f, "{}", (self.0 * 10.0).round() / 10.0 + 0.0)
    }
}

const EDGE: &str = "#64748b";
const INK: &str = "#0f172a";

const DASHED: &str = " stroke-dasharray=\"5 4\"";
const W: &str = "write to a String";

/// The standalone SVG document of `graph`, named `name` for screen readers.
pub(super) fn write(graph: &Graph, name: &str) -> String {
    let at = layout(graph);
    let (w, h) = (N(at.width), N(at.height));
    // Ids are global in an HTML page, and several diagrams may share one.
    let arrow = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let arrow = format!("scenarist-arrow-{arrow}");
    let mut out = String::new();
    let o = &mut out;
    writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" role=\"img\" aria-label=\"flow of {}\" font-family=\"sans-serif\" \
         font-size=\"12\">",
        escape(name)
    )
    .expect(W);
    writeln!(
        o,
        "<defs><marker id=\"{arrow}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"{EDGE}\"/></marker></defs>"
    )
    .expect(W);
    for (rect, (title, _)) in at.clusters.iter().zip(&graph.clusters) {
        if let Some(r) = rect {
            cluster_markup(o, r, title);
        }
    }
    for (edge, placed) in graph.edges.iter().zip(&at.edges) {
        let (d, anchor) = match &placed.route {
            Route::Down(points) => (down_path(points), "middle"),
            Route::Back { from, lane, to } => (back_path(*from, *lane, *to), "start"),
        };
        let dash = if edge.3 { DASHED } else { "" };
        let (from, to) = (escape(&edge.0), escape(&edge.1));
        writeln!(
            o,
            "<path class=\"edge\" data-from=\"{from}\" data-to=\"{to}\" d=\"{d}\" \
             fill=\"none\" stroke=\"{EDGE}\" stroke-width=\"1.2\"{dash} \
             marker-end=\"url(#{arrow})\"/>"
        )
        .expect(W);
        if let Some(label) = &edge.2 {
            let attrs = format!(
                "class=\"edge-label\" text-anchor=\"{anchor}\" fill=\"#334155\" stroke=\"#fff\" \
                 stroke-width=\"4\" stroke-linejoin=\"round\" paint-order=\"stroke\""
            );
            text(o, &attrs, placed.label, label);
        }
    }
    for (node, r) in graph.nodes.iter().zip(&at.nodes) {
        node_markup(o, node, r);
    }
    out.push_str("</svg>\n");
    out
}

/// A loop: a light dashed box behind its nodes, its title at the top left.
fn cluster_markup(out: &mut String, r: &Rect, title: &str) {
    let (x, y, w, h) = (N(r.x), N(r.y), N(r.w), N(r.h));
    let (tx, ty, title) = (N(r.x + 8.0), N(r.y + 18.0), escape(title));
    writeln!(
        out,
        "<g class=\"cluster\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\" \
         fill=\"#f8fafc\" stroke=\"#94a3b8\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{tx}\" y=\"{ty}\" fill=\"#475569\">{title}</text></g>"
    )
    .expect(W);
}

/// Multi-line `text` centred vertically on `y`, one `<tspan>` a line.
fn text(out: &mut String, attrs: &str, (x, y): (f64, f64), text: &str) {
    let lines: Vec<&str> = text.split('\n').collect();
    // 4px: about half the height of a capital at 12px, to centre on `y`.
    let first = N(y - (lines.len() - 1) as f64 * LINE_H / 2.0 + 4.0);
    let x = N(x);
    write!(out, "<text {attrs} x=\"{x}\" y=\"{first}\">").expect(W);
    for (i, l) in lines.iter().enumerate() {
        let (dy, l) = (N(if i == 0 { 0.0 } else { LINE_H }), escape(l));
        write!(out, "<tspan x=\"{x}\" dy=\"{dy}\">{l}</tspan>").expect(W);
    }
    out.push_str("</text>\n");
}

/// A vertical-tangent cubic from each point to the next, and straight lines
/// through the virtual cells (every odd segment), so the curve never wiggles
/// inside a row.
fn down_path(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (j, pair) in points.windows(2).enumerate() {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if j == 0 {
            write!(d, "M{},{}", N(x0), N(y0)).expect(W);
        }
        let mid = N((y0 + y1) / 2.0);
        let (x0, x1, y1) = (N(x0), N(x1), N(y1));
        match j % 2 {
            0 => write!(d, " C{x0},{mid} {x1},{mid} {x1},{y1}"),
            // Through an empty row (no label): nothing to draw.
            _ if y1.0 == y0 => Ok(()),
            _ => write!(d, " L{x1},{y1}"),
        }
        .expect(W);
    }
    d
}

/// Out to the right, up the lane, back in to the target, with rounded corners.
fn back_path((fx, fy): (f64, f64), lane: f64, (tx, ty): (f64, f64)) -> String {
    let r = ((fy - ty).abs() / 2.0).min(8.0);
    let up = if ty < fy { -r } else { r };
    let (l, k, bend, unbend) = (N(lane), N(lane - r), N(fy + up), N(ty - up));
    let (fx, fy, tx, ty) = (N(fx), N(fy), N(tx), N(ty));
    format!("M{fx},{fy} H{k} Q{l},{fy} {l},{bend} V{unbend} Q{l},{ty} {k},{ty} H{tx}")
}

/// One node: its shape and its label, in a group CSS can style and pages can
/// find. Step nodes are `s_<step id>`; the others are the flow's terminals,
/// coloured by what they mean (red for failure, grey for filtered out).
fn node_markup(out: &mut String, Node(id, label, shape, _): &Node, r: &Rect) {
    let (class, fill, stroke) = match id.as_str() {
        _ if *shape == POINT => ("join", EDGE, EDGE),
        _ if id.starts_with("s_") && *shape == DIAMOND => ("step", "#fffbeb", "#b45309"),
        _ if id.starts_with("s_") => ("step", "#ffffff", "#475569"),
        "failed" | "on_failure" => ("terminal", "#fef2f2", "#b91c1c"),
        "filtered" => ("terminal", "#f1f5f9", EDGE),
        _ => ("terminal", "#ecfdf5", "#047857"),
    };
    let paint = format!("fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.2\"");
    let (x, y, w, h, cx, cy) = (N(r.x), N(r.y), N(r.w), N(r.h), N(r.cx()), N(r.cy()));
    let (right, bottom) = (N(r.x + r.w), N(r.y + r.h));
    let rx = N(if *shape == ROUND { r.h / 2.0 } else { 4.0 });
    let body = match *shape {
        POINT => format!("<circle cx=\"{cx}\" cy=\"{cy}\" r=\"4\" {paint}/>"),
        DIAMOND => {
            format!("<polygon points=\"{cx},{y} {right},{cy} {cx},{bottom} {x},{cy}\" {paint}/>")
        }
        _ => {
            format!("<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"{rx}\" {paint}/>")
        }
    };
    let id = escape(id);
    writeln!(out, "<g class=\"node {class}\" data-node=\"{id}\">{body}").expect(W);
    if *shape != POINT {
        let attrs = format!("text-anchor=\"middle\" fill=\"{INK}\"");
        text(out, &attrs, (r.cx(), r.cy()), label);
    }
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::super::layout::{layout, Route};
    use super::super::tests::{graph, scenario, FLOW};
    use super::super::{flow, GraphFormat};
    use super::*;

    /// Nested loops, a router inside a loop, and `on_failure` with no `fail`
    /// step (so `failed` is reached by no edge).
    pub(super) const NESTED: &str = r##"name: nested
steps:
  - id: outer
    for_each:
      items: "{{ trigger.body.rows }}"
      steps:
        - id: inner
          for_each:
            items: "{{ item.cells }}"
            steps:
              - id: pick
                router:
                  routes:
                    - { name: one, when: { value: "{{ item }}", equals: 1 }, steps: [ { id: x, set: { a: 1 } } ] }
                    - { name: rest, steps: [] }
        - id: after
          set: { b: 1 }
  - id: last
    set: { c: 1 }
on_failure: [ { id: alert, set: { z: 1 } } ]
"##;

    /// A small XML check: tags nest and close, attribute quotes pair up, and
    /// every `&` starts one of the references [`escape`] writes.
    fn assert_well_formed(svg: &str) {
        let refs = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"];
        for (i, _) in svg.match_indices('&') {
            assert!(
                refs.iter().any(|r| svg[i..].starts_with(r)),
                "{}",
                &svg[i..]
            );
        }
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        let mut roots = 0;
        while let Some(start) = rest.find('<') {
            assert!(
                !rest[..start].contains('>'),
                "stray > in {:?}",
                &rest[..start]
            );
            let end = start + rest[start..].find('>').expect("tag closes");
            let tag = &rest[start + 1..end];
            assert!(
                !tag.contains('<') && tag.matches('"').count() % 2 == 0,
                "{tag}"
            );
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "closing {name}");
            } else {
                roots += usize::from(open.is_empty());
                if !tag.ends_with('/') {
                    open.push(tag.split(' ').next().expect("a name"));
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(
            open.is_empty() && roots == 1 && rest.trim().is_empty(),
            "{open:?}"
        );
    }

    #[test]
    fn flow_is_a_well_formed_standalone_svg() {
        let out = graph(FLOW, GraphFormat::Svg);
        assert_well_formed(&out);
        let head = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ";
        assert!(out.starts_with(head), "{out}");
        assert!(
            out.contains(" role=\"img\" aria-label=\"flow of deal-won\""),
            "{out}"
        );
        for id in ["won", "route", "a", "b", "each", "c", "route_end", "alert"] {
            let node = format!("<g class=\"node step\" data-node=\"s_{id}\">");
            assert!(out.contains(&node), "missing {node} in\n{out}");
        }
        for id in ["start", "filtered", "failed", "on_failure"] {
            let node = format!("<g class=\"node terminal\" data-node=\"{id}\">");
            assert!(out.contains(&node), "missing {node} in\n{out}");
        }
        assert!(out.contains("<g class=\"node join\" data-node=\"s_each_end\">"));
        assert!(
            !out.contains("data-node=\"done\""),
            "this flow always fails"
        );
        let edges = flow(&scenario(FLOW)).edges.len();
        assert_eq!(out.matches("<path class=\"edge\"").count(), edges);
        assert_eq!(
            out.matches("stroke-dasharray=\"5 4\"").count(),
            2,
            "next item, failed"
        );
        assert!(out.contains("data-from=\"s_each_end\" data-to=\"s_each\""));
        assert!(out.contains(">for each item in trigger.body.list</text>"));
        assert!(out.contains("<tspan x=") && out.contains("dy=\"16\">when: {{ eq"));
        assert!(out.contains("marker-end=\"url(#scenarist-arrow-deal-won)\""));
        assert!(
            out.contains("q=&quot;&lt;b&gt;&quot;#f"),
            "the URL, escaped"
        );
        assert_eq!(out, graph(FLOW, GraphFormat::Svg), "deterministic");
        assert_well_formed(&graph(NESTED, GraphFormat::Svg));
    }

    #[test]
    fn edges_go_down_and_nodes_never_overlap() {
        for yaml in [FLOW, NESTED] {
            let g = flow(&scenario(yaml));
            let at = layout(&g);
            let index = |id: &str| g.nodes.iter().position(|n| n.0 == id).unwrap();
            let mut backs = 0;
            for (edge, placed) in g.edges.iter().zip(&at.edges) {
                let (s, t) = (at.nodes[index(&edge.0)], at.nodes[index(&edge.1)]);
                match placed.route {
                    Route::Down(_) => assert!(t.y >= s.y + s.h + 1.0, "{} -> {}", edge.0, edge.1),
                    Route::Back { lane, .. } => {
                        backs += 1;
                        assert!(t.y < s.y && lane > s.x + s.w && lane > t.x + t.w);
                    }
                }
            }
            let loops = g.clusters.len();
            assert_eq!(backs, loops, "only the `next item` edges go back up");
            for (i, a) in at.nodes.iter().enumerate() {
                assert!(a.x >= 0.0 && a.y >= 0.0, "inside the picture");
                assert!(a.x + a.w <= at.width && a.y + a.h <= at.height);
                for b in &at.nodes[i + 1..] {
                    let apart = a.x + a.w <= b.x || b.x + b.w <= a.x;
                    let apart = apart || a.y + a.h <= b.y || b.y + b.h <= a.y;
                    assert!(apart, "{a:?} overlaps {b:?}");
                }
            }
            // A loop's box holds its nodes and those of the loops inside it.
            for (v, node) in g.nodes.iter().enumerate() {
                let mut cluster = node.3;
                while let Some(c) = cluster {
                    let (r, n) = (at.clusters[c].unwrap(), at.nodes[v]);
                    assert!(
                        r.x < n.x && r.y < n.y && n.x + n.w < r.x + r.w,
                        "{}",
                        node.0
                    );
                    assert!(n.y + n.h < r.y + r.h, "{}", node.0);
                    cluster = g.clusters[c].1;
                }
            }
        }
        let g = flow(&scenario(NESTED));
        let y = |id: &str| layout(&g).nodes[g.nodes.iter().position(|n| n.0 == id).unwrap()].y;
        assert!(
            y("done") < y("failed"),
            "what start never reaches comes last"
        );
        assert!(y("failed") < y("on_failure") && y("on_failure") < y("s_alert"));
        assert!(y("s_outer") < y("s_inner") && y("s_inner_end") < y("s_after"));
    }

    #[test]
    fn user_text_never_becomes_markup() {
        let yaml = r##"name: evil
trigger: { webhook: { path: "a<script>" } }
steps:
  - id: get
    http: { url: "https://x/<b>'&\"</b>" }
  - id: pick
    router:
      routes:
        - { name: "<script>", when: { value: "{{ a }}", equals: "</text><script>" }, steps: [] }
  - id: each
    for_each: { items: [ "<script>" ], steps: [] }
  - id: stop
    fail: { message: "<script>alert(1)</script>\u0001" }
"##;
        let out = graph(yaml, GraphFormat::Svg);
        assert_well_formed(&out);
        assert!(
            !out.contains("<script") && !out.contains("</script"),
            "{out}"
        );
        assert!(out.contains("&lt;/text&gt;&lt;script&gt;"), "{out}");
        assert!(
            out.contains("https://x/&lt;b&gt;&#39;&amp;&quot;&lt;/b&gt;"),
            "{out}"
        );
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;\u{FFFD}"),
            "{out}"
        );
        assert!(!out.contains('\'') && !out.contains('\u{1}'), "{out}");
        assert_eq!(
            escape("<a b=\"c\">&'\u{0}\n"),
            "&lt;a b=&quot;c&quot;&gt;&amp;&#39;\u{FFFD}\n"
        );
    }
}
