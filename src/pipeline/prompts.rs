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
    /// A template does not compile or render.
    #[error("prompt template {name}: {cause}")]
    Template { name: String, cause: minijinja::Error },
}

/// The loaded templates and their hashes.
#[derive(Debug, Clone)]
pub struct Prompts {
    sources: Vec<(Template, String, String)>,
}

impl Prompts {
    /// The embedded templates.
    pub fn embedded() -> Prompts {
        Prompts { sources: Template::ALL.iter().map(|&t| (t, t.embedded().to_string(), hash(t.embedded()))).collect() }
    }

    /// The embedded templates, replaced by the files of `dir` that have their names; each template
    /// is compiled now so a broken override fails before any work.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, PromptError> {
        let mut p = Prompts::embedded();
        if let Some(dir) = dir {
            for (t, source, h) in &mut p.sources {
                let path = dir.join(t.file_name());
                if path.is_file() {
                    *source = std::fs::read_to_string(&path).map_err(|e| PromptError::Read { path, cause: e })?;
                    *h = hash(source);
                }
            }
        }
        for (t, source, _) in &p.sources {
            minijinja::Environment::new()
                .template_from_str(source)
                .map_err(|e| PromptError::Template { name: t.file_name().to_string(), cause: e })?;
        }
        Ok(p)
    }

    fn get(&self, t: Template) -> (&str, &str) {
        self.sources.iter().find(|(x, _, _)| *x == t).map(|(_, s, h)| (s.as_str(), h.as_str())).unwrap_or(("", ""))
    }

    /// The hash (16 hex digits of SHA-256) of template `t`'s source.
    pub fn hash(&self, t: Template) -> String {
        self.get(t).1.to_string()
    }

    /// Renders template `t` with `ctx`.
    pub fn render(&self, t: Template, ctx: minijinja::Value) -> Result<String, PromptError> {
        let err = |e| PromptError::Template { name: t.file_name().to_string(), cause: e };
        let env = minijinja::Environment::new();
        let tmpl = env.template_from_str(self.get(t).0).map_err(err)?;
        tmpl.render(ctx).map(|s| s.trim().to_string()).map_err(err)
    }
}

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
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
        std::fs::write(dir.path().join("synth_polish.j2"), "{% if %}").unwrap();
        let e = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("synth_polish.j2"), "{e}");
    }
}
