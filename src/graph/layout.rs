//! A layered, top-to-bottom layout of a [`Graph`], for the SVG writer: the
//! text formats leave this to Mermaid or Graphviz, but a page that shows the
//! SVG inline has neither, so the positions are computed here. It is a pure,
//! deterministic function of the graph (same scenario, same picture), in the
//! manner of Sugiyama but kept small: no crossing minimisation beyond one
//! barycenter pass, since scenario flows are mostly chains and fans.
//!
//! Rows alternate: even rows hold the nodes (row = 2 × rank), odd rows hold
//! the edge labels. Every edge that skips a row is cut by a virtual cell in
//! each row it crosses, so that its route reserves room and never runs
//! through a node; its label sits on the first virtual cell, just below the
//! source, where it reads as the condition of that branch.

use std::collections::{HashMap, VecDeque};

use super::{Graph, DIAMOND, POINT};

/// Approximate width of a character and height of a line at 12px sans-serif.
const CHAR_W: f64 = 7.0;
pub(super) const LINE_H: f64 = 16.0;
const MARGIN: f64 = 16.0;
/// Horizontal space between cells of a row, vertical space between rows.
const SEP: f64 = 24.0;
const ROW_GAP: f64 = 18.0;
/// Padding of a loop cluster, and the room its title takes above its nodes.
const PAD: f64 = 10.0;
const TITLE_H: f64 = 16.0;
/// Space between a back edge's lane and its label.
const LABEL_GAP: f64 = 6.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A rectangle from its top-left corner and its size.
const fn rect(x: f64, y: f64, w: f64, h: f64) -> Rect {
    Rect { x, y, w, h }
}

impl Rect {
    pub fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }
    pub fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
    fn right(&self) -> f64 {
        self.x + self.w
    }
    fn union(self, o: Rect) -> Rect {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        let bottom = (self.y + self.h).max(o.y + o.h);
        rect(x, y, self.right().max(o.right()) - x, bottom - y)
    }
    fn moved(self, (dx, dy): (f64, f64)) -> Rect {
        rect(self.x + dx, self.y + dy, self.w, self.h)
    }
}

/// How an edge is drawn.
#[derive(Debug)]
pub(super) enum Route {
    /// Downward: bottom centre of the source, then the top and bottom of each
    /// virtual cell it crosses, then the top centre of the target.
    Down(Vec<(f64, f64)>),
    /// An edge back up to an ancestor (a loop's `next item`), drawn beside the
    /// rows it spans: from the right of the source along a vertical lane at
    /// `lane` to the right of the target.
    Back {
        from: (f64, f64),
        lane: f64,
        to: (f64, f64),
    },
}

/// An edge's route and the centre of its label (left end for a back edge).
#[derive(Debug)]
pub(super) struct EdgeAt {
    pub route: Route,
    pub label: (f64, f64),
}

/// Boxes of `graph.nodes`, routes of `graph.edges` and rectangles of
/// `graph.clusters`, index for index (a cluster without members has none).
#[derive(Debug)]
pub(super) struct Layout {
    pub nodes: Vec<Rect>,
    pub edges: Vec<EdgeAt>,
    pub clusters: Vec<Option<Rect>>,
    pub width: f64,
    pub height: f64,
}

/// Width and height of a block of text, one line per `\n`.
pub(super) fn text_size(text: &str) -> (f64, f64) {
    let widest = text.split('\n').map(|l| l.chars().count()).max();
    let lines = text.split('\n').count() as f64;
    (widest.unwrap_or(0) as f64 * CHAR_W, lines * LINE_H)
}

/// Node size from its label: wide enough for the longest line, tall enough
/// for every line; a diamond needs more room than its text to contain it.
fn node_size(label: &str, shape: &str) -> (f64, f64) {
    let (tw, th) = text_size(label);
    match shape {
        s if s == POINT.2 => (8.0, 8.0),
        s if s == DIAMOND.2 => ((tw * 1.6 + 24.0).max(90.0), th * 2.0 + 16.0),
        _ => ((tw + 20.0).max(90.0), th + 12.0),
    }
}

/// Edges that close a cycle, found by depth-first search from `start` (the
/// first node), then from any node not reached (the `failed` branch when no
/// step fails explicitly). Dropping them leaves a DAG to rank.
fn back_edges(n: usize, ends: &[(usize, usize)], out: &[Vec<usize>]) -> Vec<bool> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; n];
    let mut back = vec![false; ends.len()];
    for root in 0..n {
        if state[root] != NEW {
            continue;
        }
        state[root] = OPEN;
        let mut stack = vec![(root, 0)];
        while let Some(&(v, i)) = stack.last() {
            let Some(&k) = out[v].get(i) else {
                state[v] = DONE;
                stack.pop();
                continue;
            };
            stack.last_mut().expect("not empty").1 += 1;
            let w = ends[k].1;
            match state[w] {
                NEW => {
                    state[w] = OPEN;
                    stack.push((w, 0));
                }
                OPEN => back[k] = true,
                _ => {}
            }
        }
    }
    back
}

/// Rank of every node: the longest path to it over the forward edges, so that
/// each forward edge goes at least one rank down. What `start` does not reach
/// (the `failed` branch when no step fails explicitly) is ranked below the
/// rest, rather than beside `start` as if it ran first.
fn ranks(n: usize, ends: &[(usize, usize)], out: &[Vec<usize>], back: &[bool]) -> Vec<usize> {
    let longest = |mut rank: Vec<usize>| {
        let mut indegree = vec![0; n];
        for (k, &(_, to)) in ends.iter().enumerate() {
            indegree[to] += usize::from(!back[k]);
        }
        let mut reached: Vec<bool> = (0..n).map(|v| v == 0).collect();
        let mut ready: VecDeque<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
        while let Some(v) = ready.pop_front() {
            for &k in out[v].iter().filter(|&&k| !back[k]) {
                let w = ends[k].1;
                rank[w] = rank[w].max(rank[v] + 1);
                reached[w] |= reached[v];
                indegree[w] -= 1;
                if indegree[w] == 0 {
                    ready.push_back(w);
                }
            }
        }
        (rank, reached)
    };
    let (rank, reached) = longest(vec![0; n]);
    if reached.iter().all(|&r| r) {
        return rank;
    }
    let below = (0..n).filter(|&v| reached[v]).map(|v| rank[v] + 1).max();
    let below = below.unwrap_or(0);
    longest((0..n).map(|v| if reached[v] { 0 } else { below }).collect()).0
}

/// A node or a virtual cell of an edge, in a row.
struct Cell {
    row: usize,
    w: f64,
    h: f64,
    /// Cells in the row above that lead here (the source or the previous virtual cell).
    preds: Vec<usize>,
    x: f64,
}

fn cell(row: usize, (w, h): (f64, f64), preds: Vec<usize>) -> Cell {
    Cell {
        row,
        w,
        h,
        preds,
        x: 0.0,
    }
}

/// Lays `graph` out (see the module documentation).
pub(super) fn layout(graph: &Graph) -> Layout {
    let n = graph.nodes.len();
    let index: HashMap<&str, usize> = (graph.nodes.iter().enumerate())
        .map(|(i, node)| (node.0.as_str(), i))
        .collect();
    let ends: Vec<(usize, usize)> = (graph.edges.iter())
        .map(|e| (index[e.0.as_str()], index[e.1.as_str()]))
        .collect();
    let mut out = vec![Vec::new(); n];
    for (k, &(from, _)) in ends.iter().enumerate() {
        out[from].push(k);
    }
    let back = back_edges(n, &ends, &out);
    let rank = ranks(n, &ends, &out, &back);

    let mut cells: Vec<Cell> = (graph.nodes.iter().zip(&rank))
        .map(|(node, &r)| cell(2 * r, node_size(&node.1, node.2 .2), Vec::new()))
        .collect();
    // The virtual cells of each forward edge, top to bottom.
    let mut via: Vec<Vec<usize>> = vec![Vec::new(); ends.len()];
    for (k, &(from, to)) in ends.iter().enumerate().filter(|(k, _)| !back[*k]) {
        let mut prev = from;
        for row in cells[from].row + 1..cells[to].row {
            let label = graph.edges[k].2.as_deref().filter(|_| via[k].is_empty());
            let size = label.map_or((0.0, 0.0), |l| padded(text_size(l)));
            cells.push(cell(row, size, vec![prev]));
            prev = cells.len() - 1;
            via[k].push(prev);
        }
        cells[to].preds.push(prev);
    }

    let rows_n = cells.iter().map(|c| c.row + 1).max().unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); rows_n];
    for (i, cell) in cells.iter().enumerate() {
        rows[cell.row].push(i);
    }
    for row in &mut rows {
        place_row(&mut cells, row);
    }
    // Top and height of each row; cells are centred in their row.
    let mut tops = Vec::with_capacity(rows_n);
    let mut heights = Vec::with_capacity(rows_n);
    let mut y = 0.0;
    for row in &rows {
        let h = row.iter().map(|&i| cells[i].h).fold(0.0, f64::max);
        tops.push(y);
        heights.push(h);
        y += h + ROW_GAP;
    }
    let cell_rect = |i: usize| {
        let c = &cells[i];
        rect(
            c.x - c.w / 2.0,
            tops[c.row] + (heights[c.row] - c.h) / 2.0,
            c.w,
            c.h,
        )
    };
    let nodes: Vec<Rect> = (0..n).map(cell_rect).collect();

    // Back edges, shortest first, each on a lane right of everything in the
    // rows it spans (earlier lanes and their labels included).
    let right_of = |row: &Vec<usize>| {
        row.iter()
            .map(|&i| cell_rect(i).right())
            .fold(f64::MIN, f64::max)
    };
    let mut extent: Vec<f64> = rows.iter().map(right_of).collect();
    let mut order: Vec<usize> = (0..ends.len()).filter(|&k| back[k]).collect();
    order.sort_by_key(|&k| cells[ends[k].0].row.abs_diff(cells[ends[k].1].row));
    let mut lanes = vec![None; ends.len()];
    for k in order {
        let (a, b) = (cells[ends[k].0].row, cells[ends[k].1].row);
        let span = a.min(b)..=a.max(b);
        let lane = extent[span.clone()].iter().fold(f64::MIN, |m, &e| m.max(e)) + SEP;
        let label_w = graph.edges[k].2.as_deref().map_or(0.0, |l| text_size(l).0);
        extent[span].fill(lane + LABEL_GAP + label_w);
        lanes[k] = Some(lane);
    }
    let edges: Vec<EdgeAt> = (0..ends.len())
        .map(|k| {
            let (s, t) = (nodes[ends[k].0], nodes[ends[k].1]);
            if let Some(lane) = lanes[k] {
                let (from, to) = ((s.right(), s.cy()), (t.right(), t.cy()));
                let label = (lane + LABEL_GAP, (from.1 + to.1) / 2.0);
                return EdgeAt {
                    route: Route::Back { from, lane, to },
                    label,
                };
            }
            let mut points = vec![(s.cx(), s.y + s.h)];
            for c in via[k].iter().map(|&v| &cells[v]) {
                points.extend([(c.x, tops[c.row]), (c.x, tops[c.row] + heights[c.row])]);
            }
            points.push((t.cx(), t.y));
            let label = via[k].first().map(|&v| &cells[v]);
            let label = label.map_or((s.cx(), s.y + s.h), |c| {
                (c.x, tops[c.row] + heights[c.row] / 2.0)
            });
            EdgeAt {
                route: Route::Down(points),
                label,
            }
        })
        .collect();
    let clusters = cluster_rects(graph, &nodes, &ends, &edges);

    // Move everything so that the drawing starts at the margin.
    let all = (0..cells.len())
        .map(cell_rect)
        .chain(clusters.iter().flatten().copied());
    let bounds = all.reduce(Rect::union).unwrap_or(rect(0.0, 0.0, 0.0, 0.0));
    let right = extent.iter().fold(bounds.right(), |m, &e| m.max(e));
    let d = (MARGIN - bounds.x, MARGIN - bounds.y);
    let shift = |(x, y): (f64, f64)| (x + d.0, y + d.1);
    let edges = (edges.into_iter())
        .map(|EdgeAt { route, label }| EdgeAt {
            route: match route {
                Route::Down(points) => Route::Down(points.into_iter().map(shift).collect()),
                Route::Back { from, lane, to } => Route::Back {
                    from: shift(from),
                    lane: lane + d.0,
                    to: shift(to),
                },
            },
            label: shift(label),
        })
        .collect();
    Layout {
        nodes: nodes.into_iter().map(|r| r.moved(d)).collect(),
        edges,
        clusters: clusters
            .into_iter()
            .map(|c| c.map(|r| r.moved(d)))
            .collect(),
        width: right + d.0 + MARGIN,
        height: bounds.y + bounds.h + d.1 + MARGIN,
    }
}

/// The box of an edge label: its text and a little room around it.
fn padded((w, h): (f64, f64)) -> (f64, f64) {
    (w + 8.0, h + 4.0)
}

/// Orders one row by the mean position of each cell's predecessors (the one
/// barycenter pass; cells without any, in the first row, keep their order of
/// first appearance), then places it with [`pack`].
fn place_row(cells: &mut [Cell], row: &mut [usize]) {
    let mut next = 0.0;
    let mut wanted: Vec<(usize, f64)> = (row.iter())
        .map(|&i| {
            let preds = &cells[i].preds;
            let x = match preds.is_empty() {
                true => next + cells[i].w / 2.0,
                false => preds.iter().map(|&p| cells[p].x).sum::<f64>() / preds.len() as f64,
            };
            next += cells[i].w + SEP;
            (i, x)
        })
        .collect();
    wanted.sort_by(|a, b| a.1.total_cmp(&b.1));
    let widths: Vec<f64> = wanted.iter().map(|&(i, _)| cells[i].w).collect();
    let xs: Vec<f64> = wanted.iter().map(|&(_, x)| x).collect();
    for ((slot, (i, _)), x) in row.iter_mut().zip(wanted).zip(pack(&widths, &xs)) {
        (*slot, cells[i].x) = (i, x);
    }
}

/// Centres for cells of `widths`, left to right, each as near its `wanted`
/// centre as it can be without overlapping (least squares): where cells
/// collide they form a block that moves as one, to the mean of what its
/// cells want, so a chain stays straight unless something is in its way.
fn pack(widths: &[f64], wanted: &[f64]) -> Vec<f64> {
    // Offset of each cell from the first of its block.
    let mut offset = vec![0.0; widths.len()];
    // Blocks: first cell, cell count, sum over cells of (wanted - offset).
    let mut blocks: Vec<(usize, usize, f64)> = Vec::new();
    for (j, &want) in wanted.iter().enumerate() {
        let mut block = (j, 1, want);
        while let Some(&(first, len, sum)) = blocks.last() {
            let last = first + len - 1;
            let gap = offset[last] + (widths[last] + widths[block.0]) / 2.0 + SEP;
            if sum / len as f64 + gap <= block.2 / block.1 as f64 {
                break;
            }
            for o in &mut offset[block.0..block.0 + block.1] {
                *o += gap;
            }
            block = (first, len + block.1, sum + block.2 - gap * block.1 as f64);
            blocks.pop();
        }
        blocks.push(block);
    }
    let mut xs = vec![0.0; widths.len()];
    for (first, len, sum) in blocks {
        for k in first..first + len {
            xs[k] = sum / len as f64 + offset[k];
        }
    }
    xs
}

/// The rectangle of each loop cluster: its member nodes, its sub-clusters and
/// the labels of the edges between its members, padded, with room for the title.
/// Sub-clusters come after their parent in `graph.clusters`, so going
/// backwards meets every child before its parent.
fn cluster_rects(
    graph: &Graph,
    nodes: &[Rect],
    ends: &[(usize, usize)],
    edges: &[EdgeAt],
) -> Vec<Option<Rect>> {
    let mut rects: Vec<Option<Rect>> = vec![None; graph.clusters.len()];
    for c in (0..graph.clusters.len()).rev() {
        let inside = |v: usize| graph.nodes[v].3 == Some(c);
        let members = (0..nodes.len()).filter(|&v| inside(v)).map(|v| nodes[v]);
        let children = (c + 1..graph.clusters.len())
            .filter(|&d| graph.clusters[d].1 == Some(c))
            .filter_map(|d| rects[d]);
        // Its own edges' labels, and the lanes of its `next item` edges.
        let own = (0..ends.len()).filter(|&k| inside(ends[k].0) && inside(ends[k].1));
        let labels = own.filter_map(|k| {
            let (w, h) = text_size(graph.edges[k].2.as_deref()?);
            let (x, y) = edges[k].label;
            Some(match edges[k].route {
                Route::Back { .. } => rect(x, y - h / 2.0, w, h),
                Route::Down(_) => {
                    let (w, h) = padded((w, h));
                    rect(x - w / 2.0, y - h / 2.0, w, h)
                }
            })
        });
        let Some(inner) = members.chain(children).chain(labels).reduce(Rect::union) else {
            continue;
        };
        let title_w = text_size(&graph.clusters[c].0).0 + 2.0 * PAD;
        let (x, y) = (inner.x - PAD, inner.y - PAD - TITLE_H);
        let w = (inner.w + 2.0 * PAD).max(title_w);
        rects[c] = Some(rect(x, y, w, inner.h + 2.0 * PAD + TITLE_H));
    }
    rects
}
