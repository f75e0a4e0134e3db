//! The generator of random, well-typed workflow bodies (used by `build.rs`).
//!
//! Every program is rendered twice from one generated body: as a `#[workflow]` and as a plain
//! async function (its "twin") whose `ctx` is a [`crate::Twin`]-like recorder. The only
//! textual difference is the spelling of a step call: `ctx.step(f, x)` for the macro,
//! `ctx.step::<f>(x)` for the twin, which has no `#[function]` value to dispatch on.
//!
//! Termination and cost are guaranteed by construction: every loop runs on a counter (or a
//! `for` range) bounded by a small constant, counters are never shadowed or assigned by the
//! random statements, and suspensions stop being generated once the estimated number of
//! suspensions on any path passes a budget. All arithmetic stays below 2^32, so nothing
//! overflows.

use std::fmt::Write as _;

/// The steps a generated body may call; the twin rewrites exactly these call heads.
pub const STEPS: [&str; 6] = ["mix", "check", "below", "lt", "text", "tick"];

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    U64,
    Str,
    StepErr,
}

#[derive(Clone)]
struct Var {
    name: String,
    ty: Ty,
    mutable: bool,
    /// Loop counters and the accumulator: never shadowed or assigned by random statements.
    protected: bool,
}

struct Loop {
    label: Option<String>,
}

/// Estimated suspensions per program above which no more are generated.
const BUDGET: u64 = 16;
const MAX_DEPTH: usize = 3;

struct Gen {
    rng: Rng,
    fresh: usize,
    scopes: Vec<Vec<Var>>,
    loops: Vec<Loop>,
    depth: usize,
    /// How often the current position runs at most (product of enclosing loop bounds).
    mult: u64,
    /// Estimated suspensions so far.
    cost: u64,
    out: String,
    indent: usize,
    /// Suspension bases (step, sleep, signal) already used by an unnamed point.
    bases: Vec<String>,
    states: usize,
}

impl Gen {
    /// The `#[state(..)]` prefix of a suspension point, or none. The macro derives distinct
    /// names for the first point of each base and for points that bind a fresh local; every
    /// other point is named explicitly, since two points nothing tells apart are refused.
    fn site(&mut self, base: &str, fresh_binding: bool) -> String {
        let first = !self.bases.iter().any(|b| b == base);
        if first {
            self.bases.push(base.to_owned());
        }
        if first || (fresh_binding && self.rng.chance(80)) {
            String::new()
        } else {
            self.states += 1;
            format!("#[state(S{})] ", self.states)
        }
    }

    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Whether `name` was not bound before in this program (shadowing reuses a name).
    fn is_fresh(&self, name: &str) -> bool {
        !self.scopes.iter().flatten().any(|v| v.name == name)
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn vars(&self) -> impl Iterator<Item = &Var> {
        // Innermost first, and only the binding each name currently means.
        let mut seen = Vec::new();
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .filter(move |v| {
                if seen.contains(&v.name) {
                    false
                } else {
                    seen.push(v.name.clone());
                    true
                }
            })
    }

    fn declare(&mut self, name: &str, ty: Ty, mutable: bool, protected: bool) {
        self.scopes.last_mut().expect("a scope").push(Var {
            name: name.to_owned(),
            ty,
            mutable,
            protected,
        });
    }

    /// A name for a new `let`: fresh, or (sometimes) shadowing an unprotected binding of the
    /// same block (the macro refuses to let a nested block redeclare a held local).
    fn let_name(&mut self) -> String {
        if self.rng.chance(30) {
            let candidates: Vec<String> = self
                .scopes
                .last()
                .expect("a scope")
                .iter()
                .filter(|v| !v.protected)
                .map(|v| v.name.clone())
                .collect();
            if !candidates.is_empty() {
                let i = self.rng.below(candidates.len() as u64) as usize;
                return candidates[i].clone();
            }
        }
        self.fresh("v")
    }

    /// A `u64` expression over the bindings in scope, below 2^31.
    fn expr(&mut self, depth: u32) -> String {
        let pick = self.rng.below(if depth == 0 { 3 } else { 5 });
        match pick {
            0 => self.rng.below(50).to_string(),
            1 | 2 => {
                let vars: Vec<Var> = self.vars().cloned().collect();
                if vars.is_empty() {
                    return self.rng.below(50).to_string();
                }
                let v = &vars[self.rng.below(vars.len() as u64) as usize];
                match v.ty {
                    Ty::U64 => format!("({} % 1000)", v.name),
                    Ty::Str => format!("({}.len() as u64)", v.name),
                    Ty::StepErr => format!("({}.message.len() as u64)", v.name),
                }
            }
            3 => format!(
                "(({} + {}) % 1000)",
                self.expr(depth - 1),
                self.expr(depth - 1)
            ),
            _ => format!(
                "(({} * 3 + {}) % 1000)",
                self.expr(depth - 1),
                self.expr(depth - 1)
            ),
        }
    }

    fn cond(&mut self) -> String {
        match self.rng.below(3) {
            0 => {
                let (lhs, rhs) = (self.expr(1), self.expr(1));
                // `x < 0` on a `u64` is never true, and rustc says so (`unused_comparisons`).
                let rhs = if rhs == "0" { "1".to_owned() } else { rhs };
                format!("{lhs} < {rhs}")
            }
            1 => format!("{} % 2 == 0", self.expr(1)),
            _ => format!("{} > {}", self.expr(1), self.rng.below(40)),
        }
    }

    fn can_suspend(&self) -> bool {
        self.cost + self.mult <= BUDGET
    }

    fn suspend(&mut self) {
        self.cost += self.mult;
    }

    fn block(&mut self, stmts: usize) {
        self.scopes.push(Vec::new());
        self.indent += 1;
        self.depth += 1;
        for _ in 0..stmts {
            self.stmt();
        }
        self.depth -= 1;
        self.indent -= 1;
        self.scopes.pop();
    }

    fn body_len(&mut self) -> usize {
        1 + self.rng.below(3) as usize
    }

    fn stmt(&mut self) {
        let nested = self.depth < MAX_DEPTH;
        loop {
            let kind = self.rng.below(24);
            let suspends = !matches!(kind, 0 | 5 | 6 | 9 | 10 | 21 | 22);
            if suspends && !self.can_suspend() {
                // Out of budget: only plain statements and branches over them.
                if self.rng.chance(50) {
                    self.let_expr();
                } else {
                    self.acc_update();
                }
                return;
            }
            let compound = matches!(kind, 9..=17);
            if compound && !nested {
                continue;
            }
            match kind {
                0 => self.let_expr(),
                1 => self.let_step_mix(),
                2 => self.let_step_check(),
                3 => self.let_text(),
                4 => self.tick(),
                5 | 6 => self.acc_update(),
                7 => self.sleep(),
                8 => self.wait(),
                9 => self.if_stmt(),
                10 => self.match_num(),
                11 => self.match_step(),
                12 => self.if_let(),
                13 => self.for_loop(),
                14 => self.while_counter(),
                15 => self.while_step(),
                16 => self.while_let(),
                17 => self.loop_counter(),
                18 => self.let_if(),
                19 => self.let_match(),
                20 => self.let_loop(),
                21 => {
                    if self.loops.is_empty() {
                        continue;
                    }
                    self.jump();
                }
                22 => {
                    if !self.rng.chance(30) {
                        continue;
                    }
                    self.early_return();
                }
                _ => self.assign(),
            }
            return;
        }
    }

    fn let_expr(&mut self) {
        let e = self.expr(2);
        let name = self.let_name();
        let m = self.rng.chance(30);
        let kw = if m { "let mut" } else { "let" };
        self.line(&format!("{kw} {name}: u64 = {e};"));
        self.declare(&name, Ty::U64, m, false);
    }

    fn let_step_mix(&mut self) {
        self.suspend();
        let (x, y) = (self.expr(1), self.expr(1));
        let name = self.let_name();
        let m = self.rng.chance(25);
        let kw = if m { "let mut" } else { "let" };
        let ann = if self.rng.chance(30) { ": u64" } else { "" };
        let at = self.site("mix", name.starts_with('v') && self.is_fresh(&name));
        self.line(&format!(
            "{at}{kw} {name}{ann} = ctx.step(mix, ({x}, {y})).await?;"
        ));
        self.declare(&name, Ty::U64, m, false);
    }

    fn let_step_check(&mut self) {
        self.suspend();
        let x = self.expr(1);
        let name = self.let_name();
        let at = self.site("check", self.is_fresh(&name));
        self.line(&format!("{at}let {name} = ctx.step(check, {x}).await?;"));
        self.declare(&name, Ty::U64, false, false);
    }

    fn let_text(&mut self) {
        self.suspend();
        let x = self.expr(1);
        let name = self.let_name();
        let at = self.site("text", self.is_fresh(&name));
        self.line(&format!("{at}let {name} = ctx.step(text, {x}).await?;"));
        self.declare(&name, Ty::Str, false, false);
    }

    fn tick(&mut self) {
        self.suspend();
        let x = self.expr(1);
        let at = self.site("tick", false);
        self.line(&format!("{at}ctx.step(tick, {x}).await?;"));
    }

    fn acc_update(&mut self) {
        let e = self.expr(2);
        self.line(&format!("acc = (acc * 31 + {e}) % 1_000_003;"));
    }

    fn assign(&mut self) {
        let targets: Vec<String> = self
            .vars()
            .filter(|v| v.mutable && !v.protected && v.ty == Ty::U64)
            .map(|v| v.name.clone())
            .collect();
        if targets.is_empty() {
            return self.acc_update();
        }
        let t = targets[self.rng.below(targets.len() as u64) as usize].clone();
        if self.can_suspend() && self.rng.chance(40) {
            self.suspend();
            let x = self.expr(1);
            let at = self.site("mix", false);
            self.line(&format!("{at}{t} = ctx.step(mix, ({t}, {x})).await?;"));
        } else {
            let e = self.expr(2);
            self.line(&format!("{t} = {e};"));
        }
    }

    fn sleep(&mut self) {
        self.suspend();
        let secs = 1 + self.rng.below(90);
        let at = self.site("sleep", false);
        self.line(&format!(
            "{at}ctx.sleep(Duration::from_secs({secs})).await;"
        ));
    }

    fn wait(&mut self) {
        self.suspend();
        let w = self.fresh("w");
        let signal = self.rng.below(3);
        let secs = 1 + self.rng.below(600);
        let at = self.site(&format!("s{signal}"), true);
        self.line(&format!(
            "{at}let {w} = ctx.wait_for_signal::<u64>(\"s{signal}\", Duration::from_secs({secs}), ()).await;"
        ));
        let name = self.let_name();
        let default = self.rng.below(100);
        if self.rng.chance(50) {
            self.line(&format!("let {name}: u64 = {w}.unwrap_or({default});"));
        } else {
            self.line(&format!(
                "let {name}: u64 = match {w} {{ Ok(v) => v % 1000, Err(_) => {default} }};"
            ));
        }
        self.declare(&name, Ty::U64, false, false);
        // The answer always reaches the output, so a payload mixed up between the twin and
        // the engine shows.
        self.line(&format!("acc = (acc * 31 + {name}) % 1_000_003;"));
    }

    fn if_stmt(&mut self) {
        let c = self.cond();
        self.line(&format!("if {c} {{"));
        let n = self.body_len();
        self.block(n);
        if self.rng.chance(50) {
            self.line("} else {");
            let n = self.body_len();
            self.block(n);
        }
        self.line("}");
    }

    fn match_num(&mut self) {
        let e = self.expr(1);
        self.line(&format!("match {e} % 3 {{"));
        for arm in ["0", "1", "_"] {
            self.line(&format!("    {arm} => {{"));
            self.indent += 1;
            let n = self.body_len();
            self.block(n);
            self.indent -= 1;
            self.line("    }");
        }
        self.line("}");
    }

    fn match_step(&mut self) {
        self.suspend();
        let x = self.expr(1);
        let at = self.site("check", false);
        self.line(&format!("{at}match ctx.step(check, {x}).await {{"));
        let ok = self.fresh("ok");
        let err = self.fresh("e");
        for (pat, name, ty) in [("Ok", ok, Ty::U64), ("Err", err, Ty::StepErr)] {
            self.line(&format!("    {pat}({name}) => {{"));
            self.indent += 1;
            self.scopes.push(vec![Var {
                name: name.clone(),
                ty,
                mutable: false,
                protected: false,
            }]);
            let n = self.body_len();
            self.block(n);
            // Use the binding after the arm's statements, so it is held across them.
            let use_it = match ty {
                Ty::StepErr => format!("({name}.message.len() as u64)"),
                _ => format!("({name} % 1000)"),
            };
            self.line(&format!("    acc = (acc * 31 + {use_it}) % 1_000_003;"));
            self.scopes.pop();
            self.indent -= 1;
            self.line("    }");
        }
        self.line("}");
    }

    fn if_let(&mut self) {
        self.suspend();
        let (x, k) = (self.expr(1), self.rng.below(600));
        let name = self.fresh("s");
        let at = self.site("below", false);
        self.line(&format!(
            "{at}if let Some({name}) = ctx.step(below, ({x}, {k})).await? {{"
        ));
        self.scopes.push(vec![Var {
            name: name.clone(),
            ty: Ty::U64,
            mutable: false,
            protected: false,
        }]);
        let n = self.body_len();
        self.block(n);
        self.line(&format!("    acc = (acc + {name}) % 1_000_003;"));
        self.scopes.pop();
        if self.rng.chance(50) {
            self.line("} else {");
            let n = self.body_len();
            self.block(n);
        }
        self.line("}");
    }

    fn label(&mut self) -> Option<String> {
        self.rng.chance(40).then(|| self.fresh("'l"))
    }

    /// Runs `body` as a loop body at most `bound` times.
    fn loop_body(&mut self, label: Option<String>, bound: u64, counter: Option<(&str, Ty)>) {
        let saved = self.mult;
        self.mult = self.mult.saturating_mul(bound);
        self.loops.push(Loop { label });
        self.scopes.push(Vec::new());
        if let Some((name, ty)) = counter {
            self.declare(name, ty, false, true);
        }
        let n = self.body_len();
        self.block(n);
        self.scopes.pop();
        self.loops.pop();
        self.mult = saved;
    }

    fn label_prefix(label: &Option<String>) -> String {
        label.as_ref().map(|l| format!("{l}: ")).unwrap_or_default()
    }

    fn bound(&mut self) -> u64 {
        1 + self.rng.below(3)
    }

    fn for_loop(&mut self) {
        let (label, k) = (self.label(), self.bound());
        let i = self.fresh("i");
        let p = Self::label_prefix(&label);
        self.line(&format!("{p}for {i} in 0..{k}u64 {{"));
        // The loop variable is a plain binding: shadowing it cannot change the iteration.
        self.scopes.push(vec![Var {
            name: i,
            ty: Ty::U64,
            mutable: false,
            protected: false,
        }]);
        self.loop_body(label, k, None);
        self.scopes.pop();
        self.line("}");
    }

    fn counter(&mut self) -> String {
        let c = self.fresh("c");
        self.line(&format!("let mut {c}: u64 = 0;"));
        self.declare(&c, Ty::U64, true, true);
        c
    }

    fn while_counter(&mut self) {
        let (label, k) = (self.label(), self.bound());
        let c = self.counter();
        let p = Self::label_prefix(&label);
        self.line(&format!("{p}while {c} < {k} {{"));
        self.line(&format!("    {c} += 1;"));
        self.loop_body(label, k, None);
        self.line("}");
    }

    fn while_step(&mut self) {
        let (label, k) = (self.label(), self.bound());
        // The condition runs once more than the body.
        self.cost += self.mult;
        let c = self.counter();
        let p = Self::label_prefix(&label);
        let at = self.site("lt", false);
        self.line(&format!("{at}{p}while ctx.step(lt, ({c}, {k})).await? {{"));
        self.line(&format!("    {c} += 1;"));
        self.mult = self.mult.saturating_mul(k);
        self.suspend();
        self.mult /= k;
        self.loop_body(label, k, None);
        self.line("}");
    }

    fn while_let(&mut self) {
        let (label, k) = (self.label(), self.bound());
        self.cost += self.mult;
        let c = self.counter();
        let s = self.fresh("s");
        let p = Self::label_prefix(&label);
        let at = self.site("below", false);
        self.line(&format!(
            "{at}{p}while let Some({s}) = ctx.step(below, ({c}, {k})).await? {{"
        ));
        self.line(&format!("    {c} += 1;"));
        self.mult = self.mult.saturating_mul(k);
        self.suspend();
        self.mult /= k;
        self.loop_body(label, k, Some((&s, Ty::U64)));
        self.line("}");
    }

    fn loop_counter(&mut self) {
        let (label, k) = (self.label(), self.bound());
        let c = self.counter();
        let p = Self::label_prefix(&label);
        self.line(&format!("{p}loop {{"));
        self.line(&format!("    if {c} >= {k} {{"));
        self.line("        break;");
        self.line("    }");
        self.line(&format!("    {c} += 1;"));
        self.loop_body(label, k, None);
        self.line("}");
    }

    /// A value-producing branch: maybe a sleep, then a step or a plain expression as its
    /// tail. Returns whether the tail is a step.
    fn value_branch(&mut self) -> bool {
        self.indent += 1;
        if self.rng.chance(40) && self.can_suspend() {
            self.sleep();
        }
        let step = self.rng.chance(70) && self.can_suspend();
        let tail = if step {
            self.suspend();
            let (x, y) = (self.expr(1), self.expr(1));
            let at = self.site("mix", false);
            format!("{at}ctx.step(mix, ({x}, {y})).await?")
        } else {
            self.expr(1)
        };
        self.line(&tail);
        self.indent -= 1;
        step
    }

    fn let_if(&mut self) {
        let c = self.cond();
        let name = self.let_name();
        let start = self.out.len();
        self.line(&format!("let {name}@ANN@ = if {c} {{"));
        let a = self.value_branch();
        self.line("} else {");
        let b = self.value_branch();
        self.line("};");
        // The macro types the binding from the branches' step outputs when both tails are
        // steps; otherwise (and sometimes anyway) it is annotated.
        let ann = if a && b && self.rng.chance(60) {
            ""
        } else {
            ": u64"
        };
        let text = self.out.split_off(start).replacen("@ANN@", ann, 1);
        self.out.push_str(&text);
        self.declare(&name, Ty::U64, false, false);
    }

    fn let_match(&mut self) {
        self.suspend();
        let x = self.expr(1);
        let name = self.let_name();
        let e = self.fresh("e");
        let at = self.site("check", false);
        self.line(&format!(
            "{at}let {name}: u64 = match ctx.step(check, {x}).await {{"
        ));
        self.line("    Ok(v) => v,");
        self.line(&format!("    Err({e}) => {{"));
        if self.can_suspend() {
            self.suspend();
            let at = self.site("tick", false);
            self.line(&format!("        {at}ctx.step(tick, 7).await?;"));
        }
        self.line(&format!("        {e}.message.len() as u64"));
        self.line("    }");
        self.line("};");
        self.declare(&name, Ty::U64, false, false);
    }

    fn let_loop(&mut self) {
        let k = self.bound();
        let c = self.counter();
        let name = self.let_name();
        let t = self.fresh("t");
        let x = self.expr(1);
        self.mult = self.mult.saturating_mul(k);
        self.suspend();
        self.mult /= k;
        self.line(&format!("let {name}: u64 = loop {{"));
        self.line(&format!("    {c} += 1;"));
        let at = self.site("mix", true);
        self.line(&format!(
            "    {at}let {t} = ctx.step(mix, ({c}, {x})).await?;"
        ));
        self.line(&format!("    if {t} % 3 == 0 || {c} >= {k} {{"));
        self.line(&format!("        break {t};"));
        self.line("    }");
        self.line("};");
        self.declare(&name, Ty::U64, false, false);
    }

    /// A conditional `break` or `continue`, to the innermost loop or a labelled outer one.
    fn jump(&mut self) {
        let c = self.cond();
        let kw = if self.rng.chance(50) {
            "break"
        } else {
            "continue"
        };
        let labelled: Vec<String> = self.loops.iter().filter_map(|l| l.label.clone()).collect();
        let target = if !labelled.is_empty() && self.rng.chance(50) {
            format!(
                " {}",
                labelled[self.rng.below(labelled.len() as u64) as usize]
            )
        } else {
            String::new()
        };
        self.line(&format!("if {c} {{"));
        let e = self.expr(1);
        self.line(&format!("    acc = (acc * 31 + {e}) % 1_000_003;"));
        self.line(&format!("    {kw}{target};"));
        self.line("}");
    }

    fn early_return(&mut self) {
        let c = self.cond();
        self.line(&format!("if {c} {{"));
        if self.rng.chance(70) {
            let e = self.expr(1);
            self.line(&format!("    return Ok((acc + {e}) % 1_000_003);"));
        } else {
            self.line("    return Err(WorkflowError::new(\"early\"));");
        }
        self.line("}");
    }
}

/// One generated program: the body shared by the workflow and its twin, and its input.
pub struct Program {
    /// The body, as the `#[workflow]` spells it.
    pub body: String,
    /// The workflow's input `(a, b)`.
    pub input: (u64, u64),
    /// The seed of the twin's answers to signal waits.
    pub answers: u64,
}

/// Generates program `index` of batch `seed`.
pub fn program(seed: u64, index: u64) -> Program {
    let mut rng = Rng(seed.wrapping_mul(0x1000_0000_01B3) ^ index.wrapping_mul(0x9E37_79B9));
    rng.next();
    let mut g = Gen {
        rng,
        fresh: 0,
        scopes: vec![Vec::new()],
        loops: Vec::new(),
        depth: 0,
        mult: 1,
        cost: 0,
        out: String::new(),
        indent: 1,
        bases: Vec::new(),
        states: 0,
    };
    g.declare("a", Ty::U64, false, false);
    g.declare("b", Ty::U64, false, false);
    g.line("let mut acc: u64 = 0;");
    g.declare("acc", Ty::U64, true, true);
    let stmts = 2 + g.rng.below(6);
    for _ in 0..stmts {
        g.stmt();
    }
    let e = g.expr(2);
    g.line(&format!("Ok((acc * 7 + {e}) % 1_000_003)"));
    let input = (g.rng.below(100), g.rng.below(100));
    let answers = g.rng.next();
    Program {
        body: g.out,
        input,
        answers,
    }
}

/// The twin's spelling of a body: each `ctx.step(f, x)` becomes `ctx.step::<f>(x)` and the
/// `#[state(..)]` names (meaningful to the macro only) are dropped.
pub fn twin_body(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("#[state(") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(")] ").expect("a closed #[state(..)]");
        rest = &rest[at + end + 3..];
    }
    out.push_str(rest);
    for step in STEPS {
        out = out.replace(
            &format!("ctx.step({step}, "),
            &format!("ctx.step::<{step}>("),
        );
    }
    out
}

/// The source of a batch: one module per program, and the table the tests iterate.
pub fn batch(seed: u64, programs: usize) -> String {
    let mut src = String::new();
    let _ = writeln!(
        src,
        "// Generated by diff-fuzz/build.rs: batch {seed}, {programs} programs.\n\
         /// The batch's seed.\npub const SEED: u64 = {seed};\n"
    );
    for i in 0..programs {
        let p = program(seed, i as u64);
        let twin = twin_body(&p.body);
        let (a, b) = p.input;
        let _ = write!(
            src,
            "/// Generated program {i}.\npub mod p{i} {{\n\
             use super::*;\n\n\
             /// The program as a workflow.\n\
             #[workflow]\n\
             pub async fn p{i}(ctx: &mut WorkflowContext, a: u64, b: u64) -> Result<u64, WorkflowError> {{\n{body}}}\n\n\
             /// The same body run directly.\n\
             pub async fn twin(ctx: &mut Twin, a: u64, b: u64) -> Result<u64, WorkflowError> {{\n{twin}}}\n\n\
             /// Runs both and compares them.\n\
             pub fn verify(crash: bool) -> Verdict {{\n\
             Box::pin(async move {{\n\
             let mut t = Twin::new({answers});\n\
             let out = twin(&mut t, {a}, {b}).await;\n\
             compare(p{i}, ({a}, {b}), t, out, crash).await\n\
             }})\n}}\n}}\n\n",
            body = p.body,
            answers = p.answers,
        );
    }
    let _ = writeln!(src, "/// Every program's check, by index.");
    let _ = writeln!(src, "pub const PROGRAMS: &[fn(bool) -> Verdict] = &[");
    for i in 0..programs {
        let _ = writeln!(src, "    p{i}::verify,");
    }
    let _ = writeln!(src, "];");
    src
}
