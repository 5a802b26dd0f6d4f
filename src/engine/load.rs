//! The one model loader every command goes through: a model name as the user writes it (card name,
//! `.gguf` path, checkpoint directory, `hf:ORG/REPO[:FILE]`, or a server `openai:BASE_URL#MODEL`)
//! becomes a [`LoadedModel`]: the in-process [`Engine`] (resolved, fetched if needed, with the card's
//! tokenizer settings and chat template, the `--lora` adapters and `--quantize`) or a [`Remote`].
//! Commands differ only in the options they pass, so a change to loading is made here once.

use crate::engine::fetch::ModelSettings;
use crate::engine::remote::{Remote, RemoteOptions, ServerSpec};
use crate::engine::{resolve, Completion, Engine, EngineError, EngineOptions, Generator, Request};
use crate::progress::Reporter;

/// How to load a model, whatever its kind.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where cards and caches are (from the environment and flags, read by the caller).
    pub settings: ModelSettings,
    /// The in-process engine's options; its `lora` list comes after the name's own adapters and
    /// those named in [`LoadOptions::lora`]. `model_id` empty means the resolved name's id.
    pub engine: EngineOptions,
    /// LoRA adapters by name (a directory or `hf:ORG/REPO`), resolved and fetched here.
    pub lora: Vec<String>,
    /// How to talk to a server model (`openai:...`); unused for in-process models.
    pub server: RemoteOptions,
}

impl LoadOptions {
    /// The default engine and server options, with `settings`.
    pub fn new(settings: ModelSettings) -> Self {
        LoadOptions { settings, engine: EngineOptions::default(), lora: Vec::new(), server: RemoteOptions::default() }
    }
}

/// A loaded model: the in-process engine or a server.
pub enum LoadedModel {
    Engine(Engine),
    Server(Remote),
}

impl LoadedModel {
    /// The model as the [`Generator`] everything above the engine uses.
    pub fn generator(&self) -> &dyn Generator {
        match self {
            LoadedModel::Engine(e) => e,
            LoadedModel::Server(r) => r,
        }
    }
}

impl Generator for LoadedModel {
    fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, EngineError> {
        self.generator().generate(requests)
    }

    fn generate_each(&self, requests: &[Request]) -> Vec<Result<Vec<Completion>, EngineError>> {
        self.generator().generate_each(requests)
    }

    fn model_id(&self) -> String {
        self.generator().model_id()
    }

    fn has_chat_template(&self) -> bool {
        self.generator().has_chat_template()
    }

    fn check_prompt(&self, prompt: &crate::engine::Prompt) -> Result<(), EngineError> {
        self.generator().check_prompt(prompt)
    }
}

/// Whether `name` names a server rather than a model the engine loads.
pub fn is_server(name: &str) -> bool {
    ServerSpec::parse(name).is_some()
}

/// Loads the model `name` (see the module docs). Fetches report their progress to `reporter`. LoRA
/// adapters and quantization apply to weights this process loads, so asking for them with a server
/// model is an invalid request.
pub fn load(name: &str, options: LoadOptions, reporter: &dyn Reporter) -> Result<LoadedModel, EngineError> {
    if let Some(spec) = ServerSpec::parse(name) {
        if !options.lora.is_empty() || !options.engine.lora.is_empty() {
            return Err(EngineError::Request(format!("LoRA adapters apply to models loaded in-process, not `{name}`")));
        }
        if options.engine.quantize.is_some() {
            return Err(EngineError::Request(format!(
                "quantization applies to models loaded in-process, not `{name}`"
            )));
        }
        return Ok(LoadedModel::Server(Remote::new(spec?, options.server)));
    }
    let LoadOptions { settings, mut engine, lora, .. } = options;
    let resolved = resolve::resolve(name, &settings, reporter)?;
    let named = lora.iter().map(|n| resolve::resolve_adapter(n, &settings, reporter)).collect::<Result<Vec<_>, _>>()?;
    // Adapters named with --lora come before any set directly in the options.
    engine.lora.splice(0..0, named);
    Ok(LoadedModel::Engine(Engine::load(&resolved, engine)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::models::linear::Quantize;
    use crate::progress::Silent;

    const SERVER: &str = "openai:http://127.0.0.1:9/v1#coder";

    fn options() -> LoadOptions {
        LoadOptions::new(ModelSettings::in_dir(std::path::Path::new("/nonexistent-unitcoder-cache")))
    }

    #[test]
    fn a_server_name_loads_a_server_model_with_the_chat_setting() {
        let mut o = options();
        o.server.chat = false;
        let m = load(SERVER, o, &Silent).unwrap();
        assert!(matches!(m, LoadedModel::Server(_)));
        assert_eq!(m.model_id(), SERVER);
        assert!(!m.has_chat_template());
    }

    #[test]
    fn a_server_model_refuses_lora_and_quantization() {
        let mut o = options();
        o.lora = vec!["adapter".into()];
        let e = load(SERVER, o, &Silent).err().unwrap();
        assert!(matches!(&e, EngineError::Request(m) if m.contains("LoRA")), "{e}");
        let mut o = options();
        o.engine.quantize = Some(Quantize::Q8_0);
        let e = load(SERVER, o, &Silent).err().unwrap();
        assert!(matches!(&e, EngineError::Request(m) if m.contains("quantization")), "{e}");
    }

    #[test]
    fn a_malformed_server_name_and_a_missing_file_are_errors_naming_them() {
        let e = load("openai:http://127.0.0.1:9/v1", options(), &Silent).err().unwrap().to_string();
        assert!(e.contains("no `#MODEL_NAME`"), "{e}");
        let e = load("/no/such/model.gguf", options(), &Silent).err().unwrap().to_string();
        assert!(e.contains("/no/such/model.gguf") && e.contains("no such file"), "{e}");
    }
}
