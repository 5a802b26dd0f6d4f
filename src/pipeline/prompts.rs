//! The synthesis prompt templates (`prompts/synth_*.j2`): embedded in the binary, overridable file by
//! file from a directory (`--prompt-dir DIR`), rendered with minijinja. Each template's hash is recorded
//! with what it produced and is part of the model-call cache key, so editing a prompt never reuses
//! answers to the old one.
//!
//! Undefined variables are errors (minijinja's strict mode): a misspelt `{{ cod }}` would otherwise
//! send the model a prompt without the code. Each template is rendered once with sample values of
//! its variables ([`Template::vars`]) when loaded, so such a template fails before the model loads,
//! not at its first use.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The three prompts of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// Stage 2: write a `TestCases` class.
    Tests,
    /// Stage 3: fix a function that fails its tests.
    Fix,
    /// Stage 4: add a docstring and comments.
    Polish,
}

impl Template {
    /// The template's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Template::Tests => "synth_tests.j2",
            Template::Fix => "synth_fix.j2",
            Template::Polish => "synth_polish.j2",
        }
    }

    fn embedded(self) -> &'static str {
        match self {
            Template::Tests => include_str!("../../prompts/synth_tests.j2"),
            Template::Fix => include_str!("../../prompts/synth_fix.j2"),
            Template::Polish => include_str!("../../prompts/synth_polish.j2"),
        }
    }

    const ALL: [Template; 3] = [Template::Tests, Template::Fix, Template::Polish];

    /// The variables the template is rendered with; every render goes through here, so the check
    /// at load time sees the same names as the run. `tests` and `feedback` are the fix prompt's,
    /// `packages` the tests prompt's (the other templates are not given them).
    pub fn vars(self, v: &Vars<'_>) -> minijinja::Value {
        match self {
            Template::Tests => minijinja::context! { code => v.code, name => v.name, packages => v.packages },
            Template::Fix => {
                minijinja::context! { code => v.code, tests => v.tests, feedback => v.feedback, name => v.name }
            }
            Template::Polish => minijinja::context! { code => v.code, name => v.name },
        }
    }
}

/// The values a template can use (see [`Template::vars`] for which each one gets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// The function's code (the failing version for a fix, the verified one for polish).
    pub code: &'a str,
    /// The function's name.
    pub name: &'a str,
    /// The top-level modules it imports.
    pub packages: &'a [String],
    /// The tests (fix prompt).
    pub tests: &'a str,
    /// The failing tests' output (fix prompt).
    pub feedback: &'a str,
}

/// Sample values for the check at load time: realistic, every field non-empty.
const SAMPLE_CODE: &str = "import re\n\ndef count_words(text):\n    return len(re.findall(r\"\\w+\", text))";
const SAMPLE_TESTS: &str = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_two(self):\n        \
                            self.assertEqual(count_words(\"a b\"), 2)";
const SAMPLE_FEEDBACK: &str = "test_two: AssertionError: 1 != 2";

/// Why a template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// An override file exists but cannot be read.
    #[error("{}: {cause}", .path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    /// The override directory is missing, not a directory, or holds none of the templates.
    #[error("--prompt-dir {}: {problem}", .path.display())]
    Dir { path: PathBuf, problem: String },
    /// A template does not compile or render; `name` is its file (its path when overridden).
    #[error("prompt template {name}: {cause}")]
    Template { name: String, cause: minijinja::Error },
    /// A template compiles but does not render with sample values of its variables.
    #[error("prompt template {name}: it does not render ({cause}); its variables are {vars}")]
    Render { name: String, vars: String, cause: minijinja::Error },
}

/// The loaded templates, compiled once into one minijinja environment (each under its file name),
/// and their hashes.
#[derive(Debug, Clone)]
pub struct Prompts {
    env: minijinja::Environment<'static>,
    hashes: Vec<(Template, String)>,
    /// Where each template came from, for errors: its file name, or its path when overridden.
    names: Vec<(Template, String)>,
}

impl Prompts {
    /// The embedded templates.
    pub fn embedded() -> Prompts {
        // The embedded sources are part of the binary and a unit test compiles them, so this
        // cannot fail at run time.
        Prompts::compile(
            Template::ALL.iter().map(|&t| (t, t.file_name().to_string(), t.embedded().to_string())).collect(),
        )
        .expect("the embedded prompt templates compile")
    }

    /// The embedded templates, replaced by the files of `dir` that have their names; each template
    /// is compiled and rendered with sample values now, so a broken override fails before any work.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, PromptError> {
        if let Some(dir) = dir {
            check_override_dir(dir)?;
        }
        let mut sources = Vec::new();
        for t in Template::ALL {
            let path = dir.map(|d| d.join(t.file_name())).filter(|p| p.is_file());
            let (name, source) = match path {
                Some(path) => match std::fs::read_to_string(&path) {
                    Ok(source) => (path.display().to_string(), source),
                    Err(e) => return Err(PromptError::Read { path, cause: e }),
                },
                None => (t.file_name().to_string(), t.embedded().to_string()),
            };
            sources.push((t, name, source));
        }
        let prompts = Prompts::compile(sources)?;
        prompts.check()?;
        Ok(prompts)
    }

    fn compile(sources: Vec<(Template, String, String)>) -> Result<Prompts, PromptError> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let (mut hashes, mut names) = (Vec::new(), Vec::new());
        for (t, name, source) in sources {
            hashes.push((t, hash(&source)));
            env.add_template_owned(t.file_name(), source)
                .map_err(|e| PromptError::Template { name: name.clone(), cause: e })?;
            names.push((t, name));
        }
        Ok(Prompts { env, hashes, names })
    }

    /// Renders every template once with sample values: a template that compiles but cannot render
    /// (an undefined variable or attribute, an unknown filter) fails here, naming its file.
    fn check(&self) -> Result<(), PromptError> {
        let packages = ["re".to_string()];
        let sample = Vars {
            code: SAMPLE_CODE,
            name: "count_words",
            packages: &packages,
            tests: SAMPLE_TESTS,
            feedback: SAMPLE_FEEDBACK,
        };
        for t in Template::ALL {
            let vars = t.vars(&sample);
            if let Err(PromptError::Template { name, cause }) = self.render(t, vars.clone()) {
                let names: Vec<String> =
                    vars.try_iter().map(|keys| keys.map(|k| k.to_string()).collect()).unwrap_or_default();
                return Err(PromptError::Render { name, vars: names.join(", "), cause });
            }
        }
        Ok(())
    }

    fn name(&self, t: Template) -> String {
        self.names.iter().find(|(x, _)| *x == t).map_or_else(|| t.file_name().to_string(), |(_, n)| n.clone())
    }

    /// The hash (16 hex digits of SHA-256) of template `t`'s source.
    pub fn hash(&self, t: Template) -> String {
        self.hashes.iter().find(|(x, _)| *x == t).map(|(_, h)| h.clone()).unwrap_or_default()
    }

    /// Every template's hash by file name: the prompts' identity, recorded with a run's settings.
    pub fn identity(&self) -> std::collections::BTreeMap<String, String> {
        self.hashes.iter().map(|(t, h)| (t.file_name().to_string(), h.clone())).collect()
    }

    /// Renders template `t` with `ctx` (made by [`Template::vars`]).
    pub fn render(&self, t: Template, ctx: minijinja::Value) -> Result<String, PromptError> {
        let err = |e| PromptError::Template { name: self.name(t), cause: e };
        let tmpl = self.env.get_template(t.file_name()).map_err(err)?;
        tmpl.render(ctx).map(|s| s.trim().to_string()).map_err(err)
    }
}

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A directory given to override the templates must exist and hold at least one of them: a typo in
/// its path or in a file name would otherwise run the embedded templates without a word.
fn check_override_dir(dir: &Path) -> Result<(), PromptError> {
    let fail = |problem: String| Err(PromptError::Dir { path: dir.to_path_buf(), problem });
    if !dir.exists() {
        return fail("no such directory".into());
    }
    if !dir.is_dir() {
        return fail("not a directory".into());
    }
    let names: Vec<&str> = Template::ALL.iter().map(|t| t.file_name()).collect();
    // A misnamed template beside well-named ones would leave the embedded one in use unseen.
    let mut strays: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".j2") && !names.contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    strays.sort();
    if let Some(stray) = strays.first() {
        return fail(format!(
            "{stray} is not one of the templates ({}): the embedded one would be used in its place",
            names.join(", ")
        ));
    }
    if Template::ALL.iter().any(|t| dir.join(t.file_name()).is_file()) {
        return Ok(());
    }
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    found.sort();
    found.truncate(5);
    fail(format!(
        "holds none of {} (it has: {})",
        names.join(", "),
        if found.is_empty() { "nothing".to_string() } else { found.join(", ") }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_render_and_overrides_change_the_hash() {
        let p = Prompts::embedded();
        let packages = ["os".to_string()];
        let vars = Vars { code: "def f(a):\n    return a", name: "f", packages: &packages, ..Vars::default() };
        let out = p.render(Template::Tests, Template::Tests.vars(&vars)).unwrap();
        assert!(out.contains("def f(a):") && out.contains("`f`"), "{out}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("synth_fix.j2"), "fix {{ name }}").unwrap();
        let q = Prompts::load(Some(dir.path())).unwrap();
        assert_ne!(q.hash(Template::Fix), p.hash(Template::Fix));
        assert_eq!(q.hash(Template::Tests), p.hash(Template::Tests));
        // A template that compiles but cannot render fails at load, naming its file and variables:
        // an attribute of nothing, an unknown filter, a misspelt or another template's variable.
        let fix = dir.path().join("synth_fix.j2");
        for (source, why) in [
            ("fix {{ missing.deeper }}", "undefined"),
            ("fix {{ code | no_such_filter }}", "no_such_filter"),
            ("fix {{ nmae }}", "undefined"),
            ("fix {{ packages }}", "undefined"),
        ] {
            std::fs::write(&fix, source).unwrap();
            let e = Prompts::load(Some(dir.path())).unwrap_err().to_string();
            assert!(e.starts_with(&format!("prompt template {}: it does not render", fix.display())), "{e}");
            assert!(e.contains(why) && e.contains("code, tests, feedback, name"), "{e}");
        }
        std::fs::write(&fix, "fix {{ name }} {{ tests }} {{ feedback }} {% if code is defined %}{{ code }}{% endif %}")
            .unwrap();
        Prompts::load(Some(dir.path())).unwrap();
        std::fs::write(dir.path().join("synth_polish.j2"), "{% if %}").unwrap();
        let e = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("synth_polish.j2"), "{e}");
    }
}
