//! The weekly series of a [`Report`] as a standalone SVG grouped bar chart
//! (referred, qualified, rewards issued per week), to paste in a document or
//! open in a browser. Fixed size: with many weeks bars get thinner and week
//! labels are thinned out; with no data the axis still reads 0 to 1.

use std::fmt::Write;

use super::{Report, Week};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const PLOT_LEFT: f64 = 64.0;
const PLOT_RIGHT: f64 = WIDTH - 24.0;
const PLOT_TOP: f64 = 76.0;
const PLOT_BOTTOM: f64 = HEIGHT - 48.0;
/// Bars wider than this look like blocks, not bars (few weeks).
const MAX_BAR_WIDTH: f64 = 36.0;
/// Room a week label such as `Nov 16` needs, gap included.
const LABEL_WIDTH: f64 = 52.0;

/// One series of bars: its legend label, its colour, and its figure.
struct Series {
    label: &'static str,
    colour: &'static str,
    value: fn(&Week) -> u64,
}

/// The three series drawn per week, in the order of the bars.
const SERIES: [Series; 3] = [
    Series {
        label: "Referred",
        colour: "#4e79a7",
        value: |w| w.referred,
    },
    Series {
        label: "Qualified",
        colour: "#59a14f",
        value: |w| w.qualified,
    },
    Series {
        label: "Rewards issued",
        colour: "#f28e2b",
        value: |w| w.rewards_issued,
    },
];

/// The weekly series as an SVG document: title with the period (and the
/// scenario, escaped), a legend, a y axis with round tick values, and under
/// each group of three bars its week's Monday (`Nov 16`). Each bar carries a
/// tooltip with its exact figure.
pub fn chart(report: &Report) -> String {
    let mut title = format!(
        "Referrals per week, {} to {}",
        report.since.date_naive(),
        report.until.date_naive()
    );
    if let Some(scenario) = &report.scenario {
        let _ = write!(title, ", scenario {scenario}");
    }
    let title = escape(&title);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\" style=\"background:#ffffff\">\n\
         <title>{title}</title>\n\
         <text x=\"{x}\" y=\"28\" font-size=\"16\" font-weight=\"bold\" fill=\"#222222\">{title}</text>\n",
        w = num(WIDTH),
        h = num(HEIGHT),
        x = num(PLOT_LEFT),
    );
    legend(&mut out);
    let max = report
        .weeks
        .iter()
        .flat_map(|w| SERIES.iter().map(move |s| (s.value)(w)))
        .max()
        .unwrap_or(0);
    let (step, axis_max) = axis(max);
    y_axis(&mut out, step, axis_max);
    bars(&mut out, &report.weeks, axis_max);
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String) {
    let mut x = PLOT_LEFT;
    for Series { label, colour, .. } in SERIES {
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"42\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"52\" fill=\"#222222\">{label}</text>",
            num(x),
            num(x + 18.0),
        );
        x += 26.0 + 7.0 * label.len() as f64;
    }
}

/// Horizontal grid lines with their values, and the axis line itself.
fn y_axis(out: &mut String, step: u64, axis_max: u64) {
    let mut tick = 0;
    loop {
        let y = y_of(tick, axis_max);
        let _ = writeln!(
            out,
            "<line x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#dddddd\"/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" fill=\"#555555\">{tick}</text>",
            l = num(PLOT_LEFT),
            r = num(PLOT_RIGHT),
            y = num(y),
            tx = num(PLOT_LEFT - 8.0),
            ty = num(y + 4.0),
        );
        match tick.checked_add(step) {
            Some(next) if next <= axis_max => tick = next,
            _ => break,
        }
    }
    let _ = writeln!(
        out,
        "<line x1=\"{x}\" y1=\"{t}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#555555\"/>\
         <line x1=\"{x}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#555555\"/>",
        x = num(PLOT_LEFT),
        t = num(PLOT_TOP),
        b = num(PLOT_BOTTOM),
        r = num(PLOT_RIGHT),
    );
}

/// Three bars per week, centred in the week's slot, and the week's label
/// under every `stride`-th slot so labels never overlap.
fn bars(out: &mut String, weeks: &[Week], axis_max: u64) {
    if weeks.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555555\">No weeks in the period</text>",
            num((PLOT_LEFT + PLOT_RIGHT) / 2.0),
            num((PLOT_TOP + PLOT_BOTTOM) / 2.0),
        );
        return;
    }
    let slot = (PLOT_RIGHT - PLOT_LEFT) / weeks.len() as f64;
    let bar = (slot * 0.8 / 3.0).min(MAX_BAR_WIDTH);
    let stride = (LABEL_WIDTH / slot).ceil().max(1.0) as usize;
    for (i, week) in weeks.iter().enumerate() {
        let centre = PLOT_LEFT + slot * (i as f64 + 0.5);
        let mut x = centre - 1.5 * bar;
        for Series {
            label,
            colour,
            value,
        } in SERIES
        {
            let v = value(week);
            let y = y_of(v, axis_max);
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\">\
                 <title>Week of {}: {v} {}</title></rect>",
                num(x),
                num(y),
                num(bar),
                num(PLOT_BOTTOM - y),
                week.week_start,
                label.to_lowercase(),
            );
            x += bar;
        }
        if i % stride == 0 {
            let _ = writeln!(
                out,
                "<text class=\"week\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555555\">{}</text>",
                num(centre),
                num(PLOT_BOTTOM + 18.0),
                week.week_start.format("%b %-d"),
            );
        }
    }
}

/// The y coordinate of `value` on an axis from 0 to `axis_max` (>= 1).
fn y_of(value: u64, axis_max: u64) -> f64 {
    let fraction = value as f64 / axis_max.max(1) as f64;
    PLOT_BOTTOM - fraction * (PLOT_BOTTOM - PLOT_TOP)
}

/// A round tick step (1, 2, 2.5 or 5 times a power of ten, whole numbers
/// only: the figures are counts) giving at most four intervals up to `max`,
/// and the axis maximum, a multiple of the step; at least 1, so an all-zero
/// chart divides by nothing.
fn axis(max: u64) -> (u64, u64) {
    let target = max.div_ceil(4);
    let step = round_step(target);
    let axis_max = max
        .div_ceil(step)
        .checked_mul(step)
        .unwrap_or(max)
        .max(step);
    (step, axis_max)
}

fn round_step(target: u64) -> u64 {
    let mut magnitude: u64 = 1;
    loop {
        // 2.5 times the magnitude, a whole number from 10 on.
        let two_and_a_half = (magnitude >= 10)
            .then(|| magnitude.checked_mul(5).map(|m| m / 2))
            .flatten();
        let candidates = [
            Some(magnitude),
            magnitude.checked_mul(2),
            two_and_a_half,
            magnitude.checked_mul(5),
        ];
        if let Some(step) = candidates.into_iter().flatten().find(|c| *c >= target) {
            return step;
        }
        match magnitude.checked_mul(10) {
            Some(next) => magnitude = next,
            None => return target,
        }
    }
}

/// A coordinate with two decimals. Every coordinate comes from finite
/// constants and counts; a non-finite one would make the document invalid,
/// so it is drawn at 0 instead.
fn num(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "0".to_owned()
    }
}

/// Text for XML content and attribute values: markup characters escaped,
/// control characters (not allowed in XML 1.0) replaced by `?`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{fixture, request};
    use crate::report::{build, ExecutionCounts};

    const LEGEND_RECTS: usize = 3;

    fn chart_of(since: &str, until: &str, scenario: Option<&str>) -> (Report, String) {
        let report = build(
            &request(since, until, scenario),
            &fixture(),
            ExecutionCounts::default(),
        );
        let svg = chart(&report);
        (report, svg)
    }

    /// Checks, simply, that `svg` is well-formed XML: tags balance and nest,
    /// attribute quotes pair up, and every `&` starts a known entity.
    fn assert_well_formed(svg: &str) {
        let svg = svg.trim_end();
        assert!(svg.starts_with("<svg "), "starts with <svg");
        assert!(svg.ends_with("</svg>"), "ends with </svg>");
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            assert_entities(&rest[..start]);
            let end = rest[start..]
                .find('>')
                .map(|e| start + e)
                .expect("tag closes");
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "no '<' inside a tag: {tag}");
            assert_eq!(tag.matches('"').count() % 2, 0, "quotes pair up: {tag}");
            assert_entities(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name.trim()), "closing tag matches");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("tag name");
                open.push(name);
            }
            rest = &rest[end + 1..];
        }
        assert!(rest.trim().is_empty(), "no text after the root");
        assert!(open.is_empty(), "unclosed tags: {open:?}");
    }

    fn assert_entities(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
            assert!(
                entity.iter().any(|e| text[i..].starts_with(e)),
                "bare & in {text}"
            );
        }
    }

    fn assert_numbers_finite(svg: &str) {
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "non-finite number in\n{svg}"
        );
    }

    fn week_label_xs(svg: &str) -> Vec<f64> {
        svg.match_indices("<text class=\"week\" x=\"")
            .filter_map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                rest[..rest.find('"')?].parse().ok()
            })
            .collect()
    }

    #[test]
    fn chart_of_a_few_weeks_is_well_formed_with_three_bars_per_week() {
        let (report, svg) = chart_of("2026-11-04T00:00:00Z", "2026-11-25T00:00:00Z", None);
        assert_eq!(report.weeks.len(), 4);
        assert_well_formed(&svg);
        assert_numbers_finite(&svg);
        assert_eq!(
            svg.matches("<rect").count(),
            3 * report.weeks.len() + LEGEND_RECTS
        );
        assert!(svg.contains("viewBox=\"0 0 960.00 420.00\""));
        assert!(svg.contains("Referrals per week, 2026-11-04 to 2026-11-25"));
        for label in ["Referred", "Qualified", "Rewards issued"] {
            assert!(svg.contains(&format!(">{label}</text>")), "legend {label}");
        }
        assert!(svg.contains(">Nov 2</text>") && svg.contains(">Nov 16</text>"));
        assert_eq!(week_label_xs(&svg).len(), 4);
        assert!(svg.contains("Week of 2026-11-02: 2 referred"));
    }

    #[test]
    fn chart_of_one_week_has_three_bars_and_one_label() {
        let (report, svg) = chart_of("2026-11-04T00:00:00Z", "2026-11-06T00:00:00Z", None);
        assert_eq!(report.weeks.len(), 1);
        assert_well_formed(&svg);
        assert_numbers_finite(&svg);
        assert_eq!(svg.matches("<rect").count(), 3 + LEGEND_RECTS);
        assert_eq!(week_label_xs(&svg).len(), 1);
        assert!(
            svg.contains(&format!("width=\"{}\"", num(MAX_BAR_WIDTH))),
            "bars capped"
        );
    }

    #[test]
    fn chart_of_sixty_weeks_thins_labels_so_they_do_not_overlap() {
        let (report, svg) = chart_of("2026-01-05T00:00:00Z", "2027-02-28T00:00:00Z", None);
        assert_eq!(report.weeks.len(), 60);
        assert_well_formed(&svg);
        assert_numbers_finite(&svg);
        assert_eq!(svg.matches("<rect").count(), 3 * 60 + LEGEND_RECTS);
        let xs = week_label_xs(&svg);
        assert!(xs.len() > 1 && xs.len() < 60, "{} labels", xs.len());
        assert!(
            xs.windows(2).all(|p| p[1] - p[0] >= LABEL_WIDTH),
            "labels overlap: {xs:?}"
        );
        assert!(xs.iter().all(|x| (PLOT_LEFT..=PLOT_RIGHT).contains(x)));
    }

    #[test]
    fn chart_with_all_zeros_has_an_axis_up_to_one() {
        let report = build(
            &request("2026-11-04T00:00:00Z", "2026-11-25T00:00:00Z", None),
            &[],
            ExecutionCounts::default(),
        );
        let svg = chart(&report);
        assert_well_formed(&svg);
        assert_numbers_finite(&svg);
        assert!(
            svg.contains(">0</text>") && svg.contains(">1</text>"),
            "ticks 0 and 1"
        );
        assert_eq!(svg.matches("<rect").count(), 3 * 4 + LEGEND_RECTS);
        assert!(svg.contains("height=\"0.00\""));
    }

    #[test]
    fn chart_of_an_empty_period_is_still_a_valid_document() {
        let (report, svg) = chart_of("2026-11-04T00:00:00Z", "2026-11-04T00:00:00Z", None);
        assert!(report.weeks.is_empty());
        assert_well_formed(&svg);
        assert_numbers_finite(&svg);
        assert_eq!(svg.matches("<rect").count(), LEGEND_RECTS);
        assert!(svg.contains("No weeks in the period"));
    }

    #[test]
    fn scenario_name_is_escaped() {
        let (_, svg) = chart_of(
            "2026-11-04T00:00:00Z",
            "2026-11-25T00:00:00Z",
            Some("a<b>&\"c'\u{7}"),
        );
        assert_well_formed(&svg);
        assert!(svg.contains("scenario a&lt;b&gt;&amp;&quot;c&apos;?"));
        assert!(!svg.contains("a<b"));
    }

    #[test]
    fn axis_ticks_are_round_and_cover_the_maximum() {
        assert_eq!(axis(0), (1, 1));
        assert_eq!(axis(1), (1, 1));
        assert_eq!(axis(3), (1, 3));
        assert_eq!(axis(7), (2, 8));
        assert_eq!(axis(100), (25, 100));
        assert_eq!(axis(101), (50, 150));
        assert_eq!(axis(1999), (500, 2000));
        let (step, max) = axis(u64::MAX);
        assert!(step > 0 && max >= step);
    }

    #[test]
    fn taller_bars_for_bigger_figures() {
        let max = 8;
        assert_eq!(y_of(0, max), PLOT_BOTTOM);
        assert_eq!(y_of(max, max), PLOT_TOP);
        assert!(y_of(2, max) > y_of(6, max));
        assert_eq!(y_of(0, 0), PLOT_BOTTOM);
    }
}
