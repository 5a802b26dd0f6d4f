//! Decoder-only transformer architectures on candle ops, written for batched generation: left padding
//! with per-row masks and positions, a preallocated KV cache, and per-row output of the last column.
//! [`llama`], [`qwen2`] and [`qwen3`] read their configuration (GGUF metadata or HF `config.json`) into one
//! [`Config`]; the shared [`Model`] is built from it with the blocks in [`layers`]. PEFT LoRA adapters
//! attached to the [`Weights`] are applied as the layers load ([`lora`]).

mod fused;
pub mod layers;
pub mod linear;
pub mod llama;
pub mod lora;
pub mod qwen2;
pub mod qwen3;

use crate::engine::kv_cache::{KvCache, Padding};
use crate::engine::weights::Weights;
use crate::engine::EngineError;
use candle_core::{DType, Device, Tensor};
pub use layers::MatmulKernels;
use layers::{Block, QLinear, RmsNorm, Rope, StepInputs};

/// The shape and numerics of a llama-family decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `llama`, `qwen2` or `qwen3`.
    pub architecture: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub eps: f32,
    pub rope_theta: f32,
    /// The trained context length (rope tables cover all of it).
    pub context: usize,
    /// Interleaved (GPT-J) rotation: GGUF llama; rotate-half otherwise.
    pub rope_interleaved: bool,
    /// q/k/v projections carry biases (qwen2).
    pub qkv_bias: bool,
    /// Each query and key head is RMS-normalised before the rotation (qwen3's `q_norm`/`k_norm`).
    pub qk_norm: bool,
    /// Llama 3.1-style per-frequency divisors, when the checkpoint has them.
    pub rope_freq_factors: Option<Vec<f32>>,
}

/// A loaded decoder: embeddings, blocks, final norm and output projection.
pub struct Model {
    config: Config,
    embed: QLinear,
    blocks: Vec<Block>,
    norm: RmsNorm,
    /// The output projection; the embedding table itself when the checkpoint ties them.
    output: Option<QLinear>,
    rope: Rope,
    device: Device,
}

impl Model {
    /// Reads the configuration for the checkpoint's architecture and loads every tensor, with the
    /// engine's own quantized kernels where they apply.
    pub fn load(weights: &mut Weights) -> Result<Self, EngineError> {
        Self::load_with(weights, MatmulKernels::Auto)
    }

    /// Like [`Model::load`], choosing which code runs the quantized products.
    pub fn load_with(weights: &mut Weights, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let arch = weights.architecture()?;
        let config = match arch.as_str() {
            "llama" => llama::config(weights)?,
            "qwen2" => qwen2::config(weights)?,
            "qwen3" => qwen3::config(weights)?,
            other => {
                return Err(EngineError::Model {
                    path: weights.path().display().to_string(),
                    problem: format!("unsupported architecture `{other}` (supported: llama, qwen2, qwen3)"),
                })
            }
        };
        let model = Self::from_config(config, weights, kernels)?;
        // An adapter tensor left over belongs to a module this base lacks: trained on another base.
        weights.lora().check_all_used(weights.path())?;
        Ok(model)
    }

    fn from_config(config: Config, w: &mut Weights, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let device = w.device().clone();
        // Tied checkpoints project onto the vocabulary with this table too, so it gets the kernels.
        let embed = QLinear::load(w, "token_embd", false, kernels)?;
        let mut blocks = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            blocks.push(Block::load(w, i, &config, kernels)?);
        }
        let norm = RmsNorm::load(w, "output_norm", config.eps)?;
        let output = if w.contains("output.weight") { Some(QLinear::load(w, "output", false, kernels)?) } else { None };
        let rope = Rope::new(
            config.head_dim,
            config.rope_theta,
            config.context,
            config.rope_freq_factors.as_deref(),
            config.rope_interleaved,
            &device,
        )?;
        Ok(Model { config, embed, blocks, norm, output, rope, device })
    }

    /// The model's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many of the model's linear layers (output projection included) run on the engine's own
    /// kernels, out of how many.
    pub fn fast_layers(&self) -> (usize, usize) {
        let mut all: Vec<&QLinear> = vec![&self.embed];
        all.extend(self.output.iter());
        let (mut fast, mut total) = (all.iter().filter(|l| l.is_fast()).count(), all.len());
        for b in &self.blocks {
            let (f, t) = b.fast_count();
            fast += f;
            total += t;
        }
        (fast, total)
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty cache for `batch` rows and `capacity` columns.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> candle_core::Result<KvCache> {
        let c = &self.config;
        KvCache::new(c.n_layer, batch, c.n_kv_head, capacity, c.head_dim, DType::F32, &self.device)
    }

    /// Runs `tokens` (`[b * t]` row-major, the next `t` columns of every row) through the model and
    /// returns the logits of the last column, `[b, vocab]` f32. The cache advances by `t`. On the CPU
    /// this is the fused forward on plain buffers; elsewhere the tensor path.
    pub fn forward(
        &self,
        tokens: &[u32],
        t: usize,
        padding: &Padding,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let offset = cache.len();
        if offset + t > self.rope.context() {
            candle_core::bail!("sequence of {} tokens exceeds the model context {}", offset + t, self.rope.context())
        }
        if self.device.is_cpu() && cache.host_mut().is_some() {
            return self.forward_host(tokens, t, padding, cache);
        }
        self.forward_tensors(tokens, t, padding, cache)
    }

    /// [`Model::forward`] through candle tensor ops on any device: the reference the fused CPU path is
    /// tested against.
    pub fn forward_tensors(
        &self,
        tokens: &[u32],
        t: usize,
        padding: &Padding,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let b = padding.pads().len();
        let offset = cache.len();
        if offset + t > self.rope.context() {
            candle_core::bail!("sequence of {} tokens exceeds the model context {}", offset + t, self.rope.context())
        }
        let ids = Tensor::from_slice(tokens, (b, t), &self.device)?;
        let (pos, mask) = padding.tensors(offset, t, &self.device)?;
        let (cos, sin) = self.rope.tables(&pos)?;
        let step = StepInputs { cos, sin, mask };
        let mut x = self.embed.embedding(&ids)?;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, &self.rope, &step, cache, i)?;
        }
        cache.advance(t);
        // Only the last column feeds sampling: norm and project just that one.
        let x = self.norm.forward(&layers::last_column(&x)?)?;
        match &self.output {
            Some(out) => out.forward(&x),
            None => self.embed.forward(&x),
        }
    }
}

/// The llama-family fields every GGUF architecture stores under its own `{arch}.` prefix.
fn gguf_config(w: &Weights, arch: &str, rope_interleaved: bool, qkv_bias: bool) -> Result<Config, EngineError> {
    let n_embd = w.meta_usize(&format!("{arch}.embedding_length"))?;
    let n_head = w.meta_usize(&format!("{arch}.attention.head_count"))?;
    let n_kv_head = w.meta_usize(&format!("{arch}.attention.head_count_kv")).unwrap_or(n_head);
    let head_dim = w.meta_usize(&format!("{arch}.attention.key_length")).unwrap_or(n_embd / n_head.max(1));
    let vocab =
        w.tensor_dims("token_embd.weight").and_then(|d| d.first().copied()).ok_or_else(|| EngineError::Model {
            path: w.path().display().to_string(),
            problem: "missing tensor `token_embd.weight`".into(),
        })?;
    Ok(Config {
        architecture: arch.to_string(),
        n_layer: w.meta_usize(&format!("{arch}.block_count"))?,
        n_embd,
        n_head,
        n_kv_head,
        head_dim,
        vocab,
        // llama.cpp's defaults when a converter omitted the key.
        eps: w.meta_f32(&format!("{arch}.attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
        rope_theta: w.meta_f32(&format!("{arch}.rope.freq_base"))?.unwrap_or(10_000.0),
        context: w.meta_usize(&format!("{arch}.context_length")).unwrap_or(4096),
        rope_interleaved,
        qkv_bias,
        qk_norm: false,
        rope_freq_factors: None,
    })
}

/// The llama-family fields of an HF `config.json`.
fn hf_config(w: &Weights, qkv_bias: bool) -> Result<Config, EngineError> {
    let dir = w.path().to_path_buf();
    let bad = |problem: String| EngineError::Model { path: dir.join("config.json").display().to_string(), problem };
    let c = w.hf_config().ok_or_else(|| bad("not an HF checkpoint".into()))?;
    use crate::engine::weights::{hf_f64, hf_usize};
    let n_embd = hf_usize(c, "hidden_size", &dir)?;
    let n_head = hf_usize(c, "num_attention_heads", &dir)?;
    if n_head == 0 {
        return Err(bad("`num_attention_heads` is 0".into()));
    }
    Ok(Config {
        architecture: c.get("model_type").and_then(|v| v.as_str()).unwrap_or("llama").to_string(),
        n_layer: hf_usize(c, "num_hidden_layers", &dir)?,
        n_embd,
        n_head,
        n_kv_head: hf_usize(c, "num_key_value_heads", &dir).unwrap_or(n_head),
        head_dim: hf_usize(c, "head_dim", &dir).unwrap_or(n_embd / n_head),
        vocab: hf_usize(c, "vocab_size", &dir)?,
        eps: hf_f64(c, "rms_norm_eps").unwrap_or(1e-6) as f32,
        // transformers 5 saves it inside `rope_parameters`; older versions at the top level.
        rope_theta: hf_f64(c, "rope_theta")
            .or_else(|| c.get("rope_parameters").and_then(|p| hf_f64(p, "rope_theta")))
            .unwrap_or(10_000.0) as f32,
        context: hf_usize(c, "max_position_embeddings", &dir).unwrap_or(4096),
        rope_interleaved: false,
        qkv_bias,
        qk_norm: false,
        rope_freq_factors: None,
    })
}
