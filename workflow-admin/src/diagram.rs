//! A workflow's state graph, read from the Mermaid text `#[workflow]` generates, and drawn as
//! Graphviz DOT or as an SVG picture laid out here (no JavaScript, no external tool).
//!
//! The layout is deliberately simple: one row per stored state, in the order the macro lists
//! them (the order of the body), the start above the first. An edge to the next row is a
//! straight arrow; an edge further down runs in a lane on the right, an edge back up in a lane
//! on the left; an edge to the end is a short arrow to an end mark beside its state.

use std::fmt::Write as _;

/// Why a Mermaid state diagram could not be read: one line that is neither a state
/// (`Name: label`) nor an edge (`A --> B`), or that names a state with characters a generated
/// state name never has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the diagram: {problem}")]
#[non_exhaustive]
pub struct DiagramError {
    /// The offending line, counting from 1.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

impl DiagramError {
    fn new(index: usize, problem: String) -> Self {
        Self {
            line: index + 1,
            problem,
        }
    }
}

/// One stored state of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The state variant's name (`AwaitingRefundDecision`), as a run's `state_name` gives it.
    pub name: String,
    /// What a run waits on there (`wait refund_decision`, `step draft`, `start`).
    pub label: String,
}

/// One end of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Mermaid's `[*]`: where runs start (as a source) or end (as a target).
    Terminal,
    /// The state at this index of [`StateGraph::states`].
    State(usize),
}

/// A workflow's states and the moves between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateGraph {
    /// The states, in the order the workflow's body reaches them.
    pub states: Vec<State>,
    /// The edges, `(from, to)`.
    pub edges: Vec<(End, End)>,
}

impl StateGraph {
    /// Reads the `stateDiagram-v2` text of a workflow's `MERMAID` constant. Empty text (a
    /// workflow written by hand, without the macro) is an empty graph.
    ///
    /// # Errors
    /// [`DiagramError`] for a line that is neither a state (`Name: label`) nor an edge
    /// (`A --> B`), or whose state name is not an identifier.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_admin::diagram::{End, StateGraph};
    /// let g = StateGraph::from_mermaid("stateDiagram-v2\n[*] --> Draft\nDraft: step draft\nDraft --> [*]\n")?;
    /// assert_eq!(g.states[0].label, "step draft");
    /// assert_eq!(g.edges[0], (End::Terminal, End::State(0)));
    /// let err = StateGraph::from_mermaid("what is this").unwrap_err();
    /// assert_eq!(err.line, 1);
    /// # Ok::<(), workflow_admin::diagram::DiagramError>(())
    /// ```
    pub fn from_mermaid(text: &str) -> Result<Self, DiagramError> {
        let mut graph = Self::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line == "stateDiagram-v2" {
                continue;
            }
            if let Some((from, to)) = line.split_once("-->") {
                let from = graph.end(from.trim(), n)?;
                let to = graph.end(to.trim(), n)?;
                graph.edges.push((from, to));
            } else if let Some((name, label)) = line.split_once(':') {
                let name = name.trim();
                check_name(name, n)?;
                let label = label.trim().to_owned();
                match graph.states.iter_mut().find(|s| s.name == name) {
                    Some(s) => s.label = label,
                    None => graph.states.push(State {
                        name: name.to_owned(),
                        label,
                    }),
                }
            } else {
                return Err(DiagramError::new(
                    n,
                    format!("`{line}` is neither a state nor an edge"),
                ));
            }
        }
        Ok(graph)
    }

    fn end(&mut self, name: &str, line: usize) -> Result<End, DiagramError> {
        if name == "[*]" {
            return Ok(End::Terminal);
        }
        check_name(name, line)?;
        if let Some(i) = self.states.iter().position(|s| s.name == name) {
            return Ok(End::State(i));
        }
        self.states.push(State {
            name: name.to_owned(),
            label: String::new(),
        });
        Ok(End::State(self.states.len() - 1))
    }

    /// The graph in Graphviz DOT, named `name`.
    pub fn dot(&self, name: &str) -> String {
        let mut out = format!("digraph {} {{\n", dot_id(name));
        out.push_str("    rankdir=TB;\n    node [shape=box, style=rounded];\n");
        out.push_str(
            "    __start [shape=circle, style=filled, fillcolor=black, label=\"\", width=0.2];\n",
        );
        out.push_str("    __end [shape=doublecircle, style=filled, fillcolor=black, label=\"\", width=0.15];\n");
        for s in &self.states {
            let label = if s.label.is_empty() {
                dot_text(&s.name)
            } else {
                // `\n` inside a DOT string is a line break in the label.
                format!("{}\\n{}", dot_text(&s.name), dot_text(&s.label))
            };
            let _ = writeln!(out, "    {} [label=\"{label}\"];", dot_id(&s.name));
        }
        for (from, to) in &self.edges {
            let node = |e: &End, terminal: &str| match e {
                End::Terminal => terminal.to_owned(),
                End::State(i) => dot_id(&self.states[*i].name),
            };
            let _ = writeln!(
                out,
                "    {} -> {};",
                node(from, "__start"),
                node(to, "__end")
            );
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a standalone SVG picture, with the state named `current` highlighted: its
    /// group has the class `state current` and `data-current="true"`. Every state's group
    /// carries `data-state="<name>"`, so a page or a test can find it.
    pub fn svg(&self, current: Option<&str>) -> String {
        Layout::new(self).draw(self, current)
    }
}

fn check_name(name: &str, line: usize) -> Result<(), DiagramError> {
    if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(DiagramError::new(
            line,
            format!("`{name}` is not a state name"),
        ))
    }
}

/// A DOT identifier: quoted, so any name is safe.
fn dot_id(s: &str) -> String {
    format!("\"{}\"", dot_text(s))
}

/// Text inside a quoted DOT string.
fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

const ROW: f64 = 80.0;
const BOX_H: f64 = 44.0;
const LANE: f64 = 14.0;
const TOP: f64 = 50.0;
/// A rough width of one character of the 13px font; boxes only need to be wide enough.
const CHAR_W: f64 = 8.2;

/// Where everything goes.
struct Layout {
    left: f64,
    box_w: f64,
    /// The lane of each edge (by index in `edges`), for edges that skip rows or go back.
    lanes: Vec<Option<usize>>,
    width: f64,
    height: f64,
}

impl Layout {
    fn new(g: &StateGraph) -> Self {
        let longest = g
            .states
            .iter()
            .map(|s| s.name.chars().count().max(s.label.chars().count()))
            .max()
            .unwrap_or(8);
        let box_w = (longest as f64 * CHAR_W + 24.0).max(140.0);
        // Longer spans take outer lanes, so lanes nest instead of crossing where they can.
        let mut right: Vec<(usize, usize)> = Vec::new();
        let mut left: Vec<(usize, usize)> = Vec::new();
        for (k, e) in g.edges.iter().enumerate() {
            if let (End::State(a), End::State(b)) = *e {
                if b > a + 1 {
                    right.push((b - a, k));
                } else if b <= a {
                    left.push((a - b, k));
                }
            }
        }
        right.sort_unstable();
        left.sort_unstable();
        let mut lanes = vec![None; g.edges.len()];
        for (lane, (_, k)) in right.iter().enumerate() {
            lanes[*k] = Some(lane);
        }
        for (lane, (_, k)) in left.iter().enumerate() {
            lanes[*k] = Some(lane);
        }
        let left_margin = 20.0 + LANE * (left.len() as f64 + 1.0);
        let width = left_margin + box_w + 60.0 + LANE * (right.len() as f64 + 1.0) + 20.0;
        let height = TOP + ROW * g.states.len().saturating_sub(1) as f64 + BOX_H + 16.0;
        Self {
            left: left_margin,
            box_w,
            lanes,
            width,
            height,
        }
    }

    fn top(i: usize) -> f64 {
        TOP + ROW * i as f64
    }

    fn mid_y(i: usize) -> f64 {
        Self::top(i) + BOX_H / 2.0
    }

    fn center_x(&self) -> f64 {
        self.left + self.box_w / 2.0
    }

    fn right(&self) -> f64 {
        self.left + self.box_w
    }

    fn draw(&self, g: &StateGraph, current: Option<&str>) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"state-diagram\" width=\"{w:.0}\" \
             height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"sans-serif\" \
             font-size=\"13\" role=\"img\" aria-label=\"state diagram\">",
            w = self.width,
            h = self.height
        );
        out.push_str(
            "<defs><marker id=\"wf-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
             markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
             <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>",
        );
        if g.states.is_empty() {
            let _ = write!(
                out,
                "<text x=\"20\" y=\"30\" fill=\"#555\">no state diagram for this workflow</text></svg>"
            );
            return out;
        }
        let cx = self.center_x();
        let arrow = |out: &mut String, d: String, class: &str| {
            let _ = write!(
                out,
                "<path class=\"edge {class}\" d=\"{d}\" fill=\"none\" stroke=\"#555\" \
                 stroke-width=\"1.3\" marker-end=\"url(#wf-arrow)\"/>"
            );
        };
        for (k, (from, to)) in g.edges.iter().enumerate() {
            match (*from, *to) {
                (End::Terminal, End::State(b)) => {
                    let y = Self::top(b);
                    let _ = write!(
                        out,
                        "<circle class=\"start\" cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"7\" fill=\"#222\"/>",
                        y - 28.0
                    );
                    arrow(
                        &mut out,
                        format!("M{cx:.1},{:.1} L{cx:.1},{y:.1}", y - 21.0),
                        "from-start",
                    );
                }
                (End::State(a), End::Terminal) => {
                    let y = Self::mid_y(a);
                    let x0 = self.right();
                    let ex = x0 + 38.0;
                    arrow(
                        &mut out,
                        format!("M{x0:.1},{y:.1} L{:.1},{y:.1}", ex - 9.0),
                        "to-end",
                    );
                    let _ = write!(
                        out,
                        "<circle class=\"end\" cx=\"{ex:.1}\" cy=\"{y:.1}\" r=\"8\" fill=\"none\" \
                         stroke=\"#222\" stroke-width=\"1.5\"/><circle cx=\"{ex:.1}\" \
                         cy=\"{y:.1}\" r=\"4.5\" fill=\"#222\"/>"
                    );
                }
                (End::State(a), End::State(b)) if b == a + 1 => {
                    arrow(
                        &mut out,
                        format!(
                            "M{cx:.1},{:.1} L{cx:.1},{:.1}",
                            Self::top(a) + BOX_H,
                            Self::top(b)
                        ),
                        "next",
                    );
                }
                (End::State(a), End::State(b)) if b > a => {
                    let lane = self.lanes[k].unwrap_or(0);
                    let x0 = self.right();
                    let x = x0 + 60.0 + LANE * lane as f64;
                    let y0 = Self::mid_y(a) + 12.0;
                    let y1 = Self::mid_y(b) - 12.0;
                    arrow(
                        &mut out,
                        format!(
                            "M{x0:.1},{y0:.1} L{x:.1},{y0:.1} L{x:.1},{y1:.1} L{x0:.1},{y1:.1}"
                        ),
                        "forward",
                    );
                }
                (End::State(a), End::State(b)) => {
                    // Back up, or a state to itself: a lane on the left.
                    let lane = self.lanes[k].unwrap_or(0);
                    let x0 = self.left;
                    let x = x0 - 20.0 - LANE * lane as f64;
                    let y0 = Self::mid_y(a) + 8.0;
                    let y1 = Self::mid_y(b) - 8.0;
                    arrow(
                        &mut out,
                        format!(
                            "M{x0:.1},{y0:.1} L{x:.1},{y0:.1} L{x:.1},{y1:.1} L{x0:.1},{y1:.1}"
                        ),
                        "back",
                    );
                }
                (End::Terminal, End::Terminal) => {}
            }
        }
        for (i, s) in g.states.iter().enumerate() {
            let is_current = current == Some(s.name.as_str());
            let (class, fill, stroke, width) = if is_current {
                ("state current", "#ffe08a", "#b07d00", "3")
            } else {
                ("state", "#f4f6fb", "#6b7a99", "1.2")
            };
            let y = Self::top(i);
            let _ = write!(
                out,
                "<g class=\"{class}\" data-state=\"{name}\" data-current=\"{is_current}\">\
                 <title>{name}: {label}</title>\
                 <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"8\" \
                 fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"/>\
                 <text x=\"{cx:.1}\" y=\"{t1:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{name}</text>\
                 <text x=\"{cx:.1}\" y=\"{t2:.1}\" text-anchor=\"middle\" fill=\"#444\">{label}</text></g>",
                name = xml(&s.name),
                label = xml(&s.label),
                x = self.left,
                w = self.box_w,
                t1 = y + 18.0,
                t2 = y + 35.0,
            );
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUND: &str = "\
stateDiagram-v2
    Start: start
    Draft: step draft
    Awaiting: wait refund_decision
    Pay: step pay
    [*] --> Start
    Start --> Draft
    Draft --> Awaiting
    Draft --> [*]
    Awaiting --> Draft
    Awaiting --> Pay
    Awaiting --> [*]
    Pay --> [*]
";

    #[test]
    fn the_mermaid_text_reads_back_as_states_and_edges() {
        let g = StateGraph::from_mermaid(REFUND).unwrap();
        let names: Vec<&str> = g.states.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Start", "Draft", "Awaiting", "Pay"]);
        assert_eq!(g.states[2].label, "wait refund_decision");
        assert_eq!(g.edges.len(), 8);
        assert!(g.edges.contains(&(End::State(2), End::State(1))));
        assert!(g.edges.contains(&(End::Terminal, End::State(0))));
        assert!(g.edges.contains(&(End::State(3), End::Terminal)));
    }

    #[test]
    fn a_line_that_is_neither_state_nor_edge_is_refused() {
        let e = StateGraph::from_mermaid("stateDiagram-v2\n    what is this\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "line 2 of the diagram: `what is this` is neither a state nor an edge"
        );
        let e = StateGraph::from_mermaid("A --> <b>\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1 of the diagram: `<b>` is not a state name"
        );
        assert_eq!(StateGraph::from_mermaid("").unwrap(), StateGraph::default());
    }

    #[test]
    fn the_svg_has_one_group_per_state_and_highlights_only_the_current_one() {
        let g = StateGraph::from_mermaid(REFUND).unwrap();
        let svg = g.svg(Some("Awaiting"));
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<g class=\"state").count(), 4, "{svg}");
        assert_eq!(svg.matches("class=\"state current\"").count(), 1, "{svg}");
        assert!(
            svg.contains("class=\"state current\" data-state=\"Awaiting\" data-current=\"true\""),
            "{svg}"
        );
        // Straight arrows to the next row, one lane back (Awaiting -> Draft), ends beside
        // Draft, Awaiting and Pay, one start mark.
        assert_eq!(svg.matches("class=\"edge next\"").count(), 3, "{svg}");
        assert_eq!(svg.matches("class=\"edge back\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("class=\"edge to-end\"").count(), 3, "{svg}");
        assert_eq!(svg.matches("class=\"start\"").count(), 1, "{svg}");
        assert!(!g.svg(None).contains("state current"));
        assert!(!g.svg(Some("Nope")).contains("state current"));
    }

    #[test]
    fn labels_are_escaped_in_svg_and_dot() {
        let g = StateGraph::from_mermaid("A: wait <x&\"y\">\n[*] --> A\nA --> [*]\n").unwrap();
        let svg = g.svg(None);
        assert!(svg.contains("wait &lt;x&amp;&quot;y&quot;&gt;"), "{svg}");
        let dot = g.dot("w\"f");
        assert!(dot.starts_with("digraph \"w\\\"f\" {"), "{dot}");
        assert!(
            dot.contains("\"A\" [label=\"A\\nwait <x&\\\"y\\\">\"];"),
            "{dot}"
        );
        assert!(dot.contains("__start -> \"A\";"), "{dot}");
        assert!(dot.contains("\"A\" -> __end;"), "{dot}");
    }

    #[test]
    fn an_empty_graph_draws_a_note() {
        let svg = StateGraph::default().svg(Some("Start"));
        assert!(svg.contains("no state diagram"), "{svg}");
    }
}
