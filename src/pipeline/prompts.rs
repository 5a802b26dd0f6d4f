//! The synthesis prompt templates (`prompts/synth_*.j2`): embedded in the binary, overridable file by
//! file from a directory (`--prompts DIR`), rendered with minijinja. Each template's hash is recorded
//! with what it produced and is part of the model-call cache key, so editing a prompt never reuses
//! answers to the old one.

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
}

/// Why a template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// An override file exists but cannot be read.
    #[error("{}: {cause}", .path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    /// The override directory is missing, not a directory, or holds none of the templates.
    #[error("--prompt-dir {}: {problem}", .path.display())]
    Dir { path: PathBuf, problem: String },
    /// A template does not compile or render.
    #[error("prompt template {name}: {cause}")]
    Template { name: String, cause: minijinja::Error },
}

/// The loaded templates, compiled once into one minijinja environment (each under its file name),
/// and their hashes.
#[derive(Debug, Clone)]
pub struct Prompts {
    env: minijinja::Environment<'static>,
    hashes: Vec<(Template, String)>,
}

impl Prompts {
    /// The embedded templates.
    pub fn embedded() -> Prompts {
        // The embedded sources are part of the binary and a unit test compiles them, so this
        // cannot fail at run time.
        Prompts::compile(Template::ALL.iter().map(|&t| (t, t.embedded().to_string())).collect())
            .expect("the embedded prompt templates compile")
    }

    /// The embedded templates, replaced by the files of `dir` that have their names; each template
    /// is compiled now so a broken override fails before any work.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, PromptError> {
        if let Some(dir) = dir {
            check_override_dir(dir)?;
        }
        let mut sources = Vec::new();
        for t in Template::ALL {
            let path = dir.map(|d| d.join(t.file_name())).filter(|p| p.is_file());
            let source = match path {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| PromptError::Read { path, cause: e })?,
                None => t.embedded().to_string(),
            };
            sources.push((t, source));
        }
        Prompts::compile(sources)
    }

    fn compile(sources: Vec<(Template, String)>) -> Result<Prompts, PromptError> {
        let mut env = minijinja::Environment::new();
        let mut hashes = Vec::new();
        for (t, source) in sources {
            hashes.push((t, hash(&source)));
            env.add_template_owned(t.file_name(), source)
                .map_err(|e| PromptError::Template { name: t.file_name().to_string(), cause: e })?;
        }
        Ok(Prompts { env, hashes })
    }

    /// The hash (16 hex digits of SHA-256) of template `t`'s source.
    pub fn hash(&self, t: Template) -> String {
        self.hashes.iter().find(|(x, _)| *x == t).map(|(_, h)| h.clone()).unwrap_or_default()
    }

    /// Every template's hash by file name: the prompts' identity, recorded with a run's settings.
    pub fn identity(&self) -> std::collections::BTreeMap<String, String> {
        self.hashes.iter().map(|(t, h)| (t.file_name().to_string(), h.clone())).collect()
    }

    /// Renders template `t` with `ctx`.
    pub fn render(&self, t: Template, ctx: minijinja::Value) -> Result<String, PromptError> {
        let err = |e| PromptError::Template { name: t.file_name().to_string(), cause: e };
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
    if Template::ALL.iter().any(|t| dir.join(t.file_name()).is_file()) {
        return Ok(());
    }
    let names: Vec<&str> = Template::ALL.iter().map(|t| t.file_name()).collect();
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
        let out = p
            .render(
                Template::Tests,
                minijinja::context! { code => "def f(a):\n    return a", name => "f", packages => vec!["os"] },
            )
            .unwrap();
        assert!(out.contains("def f(a):") && out.contains("`f`"), "{out}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("synth_fix.j2"), "fix {{ name }}").unwrap();
        let q = Prompts::load(Some(dir.path())).unwrap();
        assert_ne!(q.hash(Template::Fix), p.hash(Template::Fix));
        assert_eq!(q.hash(Template::Tests), p.hash(Template::Tests));
        // A template that compiles but cannot render names itself in the error.
        std::fs::write(dir.path().join("synth_fix.j2"), "fix {{ missing.deeper }}").unwrap();
        let e = Prompts::load(Some(dir.path())).unwrap().render(Template::Fix, minijinja::context! {}).unwrap_err();
        assert!(e.to_string().contains("synth_fix.j2"), "{e}");
        std::fs::write(dir.path().join("synth_polish.j2"), "{% if %}").unwrap();
        let e = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("synth_polish.j2"), "{e}");
    }
}
