//! Decoder-only transformer architectures on candle ops, written for batched generation: left padding
//! with per-row masks and positions, a preallocated KV cache, and per-row output of the last column.
//! Each architecture's file ([`llama`], [`qwen2`], [`qwen3`], [`mistral`], [`phi3`], [`starcoder2`],
//! [`gemma2`], [`gemma3`]) reads its configuration (GGUF metadata or HF `config.json`) into one
//! [`Config`]; the shared [`Model`] is built from it with the blocks in [`layers`]. PEFT LoRA adapters
//! attached to the [`Weights`] are applied as the layers load ([`lora`]).

mod fused;
pub mod gemma2;
pub mod gemma3;
pub mod layers;
pub mod linear;
pub mod llama;
pub mod lora;
pub mod mistral;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod rope;
pub mod starcoder2;

use crate::engine::kv_cache::{KvCache, Padding};
use crate::engine::weights::Weights;
use crate::engine::EngineError;
use candle_core::{DType, Device, Tensor};
pub use layers::MatmulKernels;
use layers::{Block, Norm, QLinear, Rope, StepInputs};
pub use rope::{RopeScaling, RopeSpec};

/// How the blocks normalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormKind {
    /// RMS norm times the stored weight.
    #[default]
    Rms,
    /// RMS norm times `1 + weight` (gemma stores the offset from one).
    RmsPlusOne,
    /// Layer norm with a bias (starcoder2).
    Layer,
}

/// The MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Act {
    #[default]
    Silu,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
}

/// The shape and numerics of a decoder; [`Default`] is llama's numerics with no shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The architecture's name (`llama`, `qwen2`, `mistral`, ...).
    pub architecture: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub eps: f32,
    /// Base, Llama 3 factors and scaling of the rotary embeddings (of the global layers, for gemma3).
    pub rope: RopeSpec,
    /// The rope of the sliding-window layers, when it differs (gemma3's local base frequency).
    pub rope_local: Option<RopeSpec>,
    /// The trained context length: the most positions a sequence may reach.
    pub context: usize,
    /// Interleaved (GPT-J) rotation: GGUF llama; rotate-half otherwise.
    pub rope_interleaved: bool,
    /// q/k/v projections carry biases (qwen2).
    pub qkv_bias: bool,
    /// Each query and key head is RMS-normalised before the rotation (qwen3's `q_norm`/`k_norm`).
    pub qk_norm: bool,
    pub norm: NormKind,
    pub act: Act,
    /// `down(act(gate) * up)`; without a gate `down(act(up))` (starcoder2).
    pub mlp_gated: bool,
    /// Biases on the MLP projections and on the attention output (starcoder2).
    pub mlp_bias: bool,
    pub o_bias: bool,
    /// q|k|v in one `attn_qkv` tensor and gate|up in `ffn_up` (phi3).
    pub fused_qkv: bool,
    /// Norms after attention and after the MLP, before each residual add (gemma2, gemma3).
    pub sandwich_norms: bool,
    /// Embeddings multiplied by this (gemma: `sqrt(hidden)`).
    pub embed_scale: Option<f32>,
    /// The factor on attention scores, when not `1 / sqrt(head_dim)` (gemma's `query_pre_attn_scalar`).
    pub attn_scale: Option<f32>,
    /// Attention scores and final logits soft-capped as `cap * tanh(x / cap)` (gemma2).
    pub attn_softcap: Option<f32>,
    pub final_softcap: Option<f32>,
    /// Keys more than `sliding_window - 1` columns before a query are masked, in the layers
    /// `sliding_layers` marks (every layer when it is empty).
    pub sliding_window: Option<usize>,
    pub sliding_layers: Vec<bool>,
}

impl Config {
    /// The sliding window of layer `layer`, if it has one.
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.sliding_window.filter(|_| self.sliding_layers.get(layer).copied().unwrap_or(true))
    }
}

/// A loaded decoder: embeddings, blocks, final norm and output projection.
pub struct Model {
    config: Config,
    embed: QLinear,
    blocks: Vec<Block>,
    norm: Norm,
    /// The output projection; the embedding table itself when the checkpoint ties them.
    output: Option<QLinear>,
    rope: Rope,
    /// The sliding-window layers' own rope (gemma3).
    rope_local: Option<Rope>,
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
        let config = Self::checked_config(weights)?;
        let model = Self::from_config(config, weights, kernels)?;
        // An adapter tensor left over belongs to a module this base lacks: trained on another base.
        weights.lora().check_all_used(weights.path())?;
        Ok(model)
    }

    /// The configuration for the checkpoint's architecture, checked against itself and against the
    /// tensors' shapes, without loading a tensor: what `models info` asks to say whether a file
    /// will load, and what loading asks first.
    pub fn checked_config(weights: &mut Weights) -> Result<Config, EngineError> {
        let arch = weights.architecture()?;
        let config = match arch.as_str() {
            "llama" => llama::config(weights)?,
            "qwen2" => qwen2::config(weights)?,
            "qwen3" => qwen3::config(weights)?,
            "mistral" => mistral::config(weights)?,
            "phi3" => phi3::config(weights)?,
            "starcoder2" => starcoder2::config(weights)?,
            "gemma2" => gemma2::config(weights)?,
            "gemma3_text" => gemma3::config(weights)?,
            other => {
                return Err(EngineError::Model {
                    path: weights.path().display().to_string(),
                    problem: format!("unsupported architecture `{other}` (supported: {})", SUPPORTED.join(", ")),
                })
            }
        };
        check_config(&config, weights)?;
        check_shapes(&config, weights)?;
        Ok(config)
    }

    fn from_config(config: Config, w: &mut Weights, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let device = w.device().clone();
        // Tied checkpoints project onto the vocabulary with this table too, so it gets the kernels.
        let embed = QLinear::load(w, "token_embd", false, kernels)?;
        let mut blocks = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            blocks.push(Block::load(w, i, &config, kernels)?);
        }
        let norm = Norm::load(w, "output_norm", &config)?;
        let output = if w.contains("output.weight") { Some(QLinear::load(w, "output", false, kernels)?) } else { None };
        let rope = Rope::new(config.head_dim, &config.rope, config.rope_interleaved);
        let rope_local =
            config.rope_local.as_ref().map(|spec| Rope::new(config.head_dim, spec, config.rope_interleaved));
        Ok(Model { config, embed, blocks, norm, output, rope, rope_local, device })
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

    /// Where the next `t` columns go in `cache`; an error when they would pass the model's context.
    fn next_offset(&self, cache: &KvCache, t: usize) -> candle_core::Result<usize> {
        let offset = cache.len();
        if offset + t > self.config.context {
            candle_core::bail!("sequence of {} tokens exceeds the model context {}", offset + t, self.config.context)
        }
        Ok(offset)
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
        self.next_offset(cache, t)?;
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
        let offset = self.next_offset(cache, t)?;
        let ids = Tensor::from_slice(tokens, (b, t), &self.device)?;
        let mask = Tensor::from_vec(padding.mask(offset, t), (b, 1, t, offset + t), &self.device)?;
        let positions = padding.positions(offset, t);
        let (cos, sin) = self.rope.tables(&positions, b, t, &self.device)?;
        let local = self.rope_local.as_ref().map(|r| r.tables(&positions, b, t, &self.device)).transpose()?;
        let window_mask = match self.config.sliding_window {
            Some(w) => Some(Tensor::from_vec(padding.mask_window(offset, t, w), mask.shape(), &self.device)?),
            None => None,
        };
        let step = StepInputs { cos, sin, local, mask, window_mask };
        let mut x = self.embed.embedding(&ids)?;
        if let Some(s) = self.config.embed_scale {
            x = (x * s as f64)?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, &self.rope, &step, cache, i)?;
        }
        cache.advance(t);
        // Only the last column feeds sampling: norm and project just that one.
        let x = self.norm.forward(&layers::last_column(&x)?)?;
        let logits = match &self.output {
            Some(out) => out.forward(&x)?,
            None => self.embed.forward(&x)?,
        };
        layers::softcap(&logits, self.config.final_softcap)
    }
}

/// The llama-family fields every GGUF architecture stores under its own `{arch}.` prefix.
fn gguf_config(w: &Weights, arch: &str, rope_interleaved: bool, qkv_bias: bool) -> Result<Config, EngineError> {
    let n_embd = w.meta_usize(&format!("{arch}.embedding_length"))?;
    let n_head = w.meta_usize(&format!("{arch}.attention.head_count"))?;
    let n_kv_head = w.meta_usize_or(&format!("{arch}.attention.head_count_kv"), n_head)?;
    // `check_config` reports 0 heads; until then the division must not panic.
    let head_dim = w.meta_usize_or(&format!("{arch}.attention.key_length"), n_embd / n_head.max(1))?;
    let vocab =
        w.tensor_dims("token_embd.weight").and_then(|d| d.first().copied()).ok_or_else(|| EngineError::Model {
            path: w.path().display().to_string(),
            problem: "missing tensor `token_embd.weight`".into(),
        })?;
    let mut rope =
        RopeSpec { theta: w.meta_f32(&format!("{arch}.rope.freq_base"))?.unwrap_or(10_000.0), ..Default::default() };
    // llama.cpp's converter writes HF rope scaling here; linear is a plain factor, the rest is refused
    // rather than ignored (positions past the original context would be wrong).
    match w.meta_str(&format!("{arch}.rope.scaling.type")).ok().as_deref() {
        None | Some("none") => {}
        Some("linear") => {
            let factor = w.meta_f32(&format!("{arch}.rope.scaling.factor"))?.unwrap_or(1.0);
            rope.scaling = Some(RopeScaling::Linear { factor });
        }
        Some(other) => {
            return Err(EngineError::Model {
                path: w.path().display().to_string(),
                problem: format!("GGUF rope scaling `{other}` is not supported (supported: linear)"),
            })
        }
    }
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
        rope,
        context: w.meta_usize_or(&format!("{arch}.context_length"), 4096)?,
        rope_interleaved,
        qkv_bias,
        mlp_gated: true,
        ..Default::default()
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
    // Optional fields may be absent or null; one that is there must be a valid integer.
    let optional = |key: &str, default: usize| match c.get(key) {
        Some(v) if !v.is_null() => hf_usize(c, key, &dir),
        _ => Ok(default),
    };
    // `check_config` reports 0 heads; until then the division must not panic.
    let head_dim = optional("head_dim", n_embd / n_head.max(1))?;
    let at = dir.join("config.json").display().to_string();
    // transformers 5 saves theta and scaling in `rope_parameters`; older versions `rope_theta` at the
    // top level and the scaling in `rope_scaling`.
    let theta = hf_f64(c, "rope_theta").unwrap_or(10_000.0) as f32;
    let block = c.get("rope_scaling").filter(|v| !v.is_null()).or_else(|| c.get("rope_parameters"));
    let rope = rope::hf_rope(block, theta, head_dim, &at)?;
    if let Some(p) = hf_f64(c, "partial_rotary_factor").filter(|p| *p != 1.0) {
        return Err(bad(format!("partial rotary embeddings (`partial_rotary_factor` {p}) are not supported")));
    }
    let model_type = c.get("model_type").and_then(|v| v.as_str()).unwrap_or("llama");
    // gemma and starcoder2 read their activation from their own keys and set it after this.
    let act = match model_type {
        "gemma2" | "gemma3_text" | "starcoder2" => Act::Silu,
        _ => hf_act(c, "hidden_act", &dir)?,
    };
    // transformers' `attention_bias` puts biases on q, k, v and o in these architectures (qwen2's
    // q/k/v biases are its layout, not a setting); elsewhere the key is not read, so a checkpoint
    // that turns it on is refused rather than run without its biases. Likewise llama's `mlp_bias`.
    let flag = |key: &str| c.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
    let (attention_bias, mlp_bias) = (flag("attention_bias"), flag("mlp_bias"));
    let biased = matches!(model_type, "llama" | "qwen3" | "gemma2" | "gemma3_text");
    if attention_bias && !biased {
        return Err(bad(format!("`attention_bias: true` is not supported for `{model_type}`")));
    }
    if mlp_bias && model_type != "llama" {
        return Err(bad(format!("`mlp_bias: true` is not supported for `{model_type}`")));
    }
    Ok(Config {
        architecture: model_type.to_string(),
        n_layer: hf_usize(c, "num_hidden_layers", &dir)?,
        n_embd,
        n_head,
        n_kv_head: optional("num_key_value_heads", n_head)?,
        head_dim,
        vocab: hf_usize(c, "vocab_size", &dir)?,
        eps: hf_f64(c, "rms_norm_eps").unwrap_or(1e-6) as f32,
        rope,
        context: optional("max_position_embeddings", 4096)?,
        qkv_bias: qkv_bias || (biased && attention_bias),
        o_bias: biased && attention_bias,
        mlp_bias,
        act,
        mlp_gated: true,
        ..Default::default()
    })
}

/// Refuses tensors whose shapes the configuration contradicts (a `hidden_size` or head count edited
/// in config.json, weights of another model), naming the tensor, its shape and the one needed, and
/// layers past the configured count: without this the first surfaces as a panic in a kernel, or as
/// a model that runs other arithmetic than its weights were trained for, and the second silently
/// drops layers.
fn check_shapes(c: &Config, w: &Weights) -> Result<(), EngineError> {
    let hf = w.hf_config();
    let path = match hf {
        Some(_) => w.path().join("config.json"),
        None => w.path().to_path_buf(),
    };
    let shown = |gguf: &str| match hf {
        Some(h) => crate::engine::hf_names::hf_name_for(crate::engine::hf_names::model_type(h), gguf)
            .unwrap_or_else(|| gguf.to_string()),
        None => gguf.to_string(),
    };
    let settings = match hf {
        Some(_) => format!(
            "hidden_size {}, num_attention_heads {}, num_key_value_heads {}, head_dim {}, vocab_size {}",
            c.n_embd, c.n_head, c.n_kv_head, c.head_dim, c.vocab
        ),
        None => format!(
            "embedding {}, heads {}, KV heads {}, head size {}, vocabulary {}",
            c.n_embd, c.n_head, c.n_kv_head, c.head_dim, c.vocab
        ),
    };
    let (e, q, kv) = (c.n_embd, c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
    // (name, rows, columns); None: not fixed by the configuration (the MLP's width).
    let mut want: Vec<(String, Option<usize>, Option<usize>)> =
        vec![("token_embd.weight".into(), Some(c.vocab), Some(e)), ("output.weight".into(), Some(c.vocab), Some(e))];
    for i in 0..c.n_layer {
        let p = format!("blk.{i}");
        want.push((format!("{p}.attn_q.weight"), Some(q), Some(e)));
        want.push((format!("{p}.attn_k.weight"), Some(kv), Some(e)));
        want.push((format!("{p}.attn_v.weight"), Some(kv), Some(e)));
        want.push((format!("{p}.attn_qkv.weight"), Some(q + 2 * kv), Some(e)));
        want.push((format!("{p}.attn_output.weight"), Some(e), Some(q)));
        want.push((format!("{p}.ffn_gate.weight"), None, Some(e)));
        want.push((format!("{p}.ffn_up.weight"), None, Some(e)));
        want.push((format!("{p}.ffn_down.weight"), Some(e), None));
    }
    for (name, rows, cols) in want {
        let Some(dims) = w.tensor_dims(&name) else { continue };
        let fits = |want: Option<usize>, got: Option<&usize>| want.is_none() || want == got.copied();
        if dims.len() != 2 || !fits(rows, dims.first()) || !fits(cols, dims.get(1)) {
            let need = |v: Option<usize>| v.map_or("any".to_string(), |v| v.to_string());
            return Err(EngineError::Model {
                path: path.display().to_string(),
                problem: format!(
                    "tensor `{}` is {dims:?}, but the configuration ({settings}) needs [{}, {}]",
                    shown(&name),
                    need(rows),
                    need(cols)
                ),
            });
        }
    }
    // A layer's weights are there when any of the tensors every architecture has in it is.
    let has_layer = |i: usize| {
        ["attn_norm", "attn_q", "attn_qkv", "ffn_down"].iter().any(|t| w.contains(&format!("blk.{i}.{t}.weight")))
    };
    let layers = if hf.is_some() { "`num_hidden_layers`" } else { "the block count" };
    if let Some(missing) = (0..c.n_layer).find(|&i| !has_layer(i)) {
        return Err(EngineError::Model {
            path: path.display().to_string(),
            problem: format!(
                "{layers} is {}, but the weights hold no layer {missing} (no `{}`): they belong to a shallower model, \
                 or the configuration is wrong",
                c.n_layer,
                shown(&format!("blk.{missing}.attn_norm.weight")),
            ),
        });
    }
    // Every tensor the blocks load under this configuration (norms, biases, gemma's extra norms,
    // qwen3's q/k norms...): one missing (a renamed tensor, a checkpoint cut short) is named here, by
    // `models info` too, instead of by the loader of that layer.
    for i in 0..c.n_layer {
        if let Some(n) = layer_tensors(c, i).into_iter().find(|n| !w.contains(n)) {
            return Err(EngineError::Model {
                path: path.display().to_string(),
                problem: format!(
                    "tensor `{}` is missing: every layer of this {} model has one",
                    shown(&n),
                    c.architecture
                ),
            });
        }
    }
    let beyond = format!("blk.{}", c.n_layer);
    if has_layer(c.n_layer) {
        return Err(EngineError::Model {
            path: path.display().to_string(),
            problem: format!(
                "the weights hold layer {} (`{}`), but {layers} is {}: they belong to a deeper model",
                c.n_layer,
                shown(&format!("{beyond}.attn_norm.weight")),
                c.n_layer
            ),
        });
    }
    Ok(())
}

/// The tensors [`layers::Block::load`] reads for layer `i` under `c`, as the configuration decides them: a
/// layer norm's bias, q/k/v biases, gemma's norms after attention and MLP, qwen3's q/k norms, a gate
/// projection where the MLP is gated and not fused with the up projection (phi3 fuses them).
fn layer_tensors(c: &Config, i: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |t: &str, bias: bool| {
        names.push(format!("blk.{i}.{t}.weight"));
        if bias {
            names.push(format!("blk.{i}.{t}.bias"));
        }
    };
    let layer_norm = c.norm == NormKind::Layer;
    add("attn_norm", layer_norm);
    add("ffn_norm", layer_norm);
    if c.sandwich_norms {
        add("attn_post_norm", layer_norm);
        add("ffn_post_norm", layer_norm);
    }
    if c.qk_norm {
        add("attn_q_norm", layer_norm);
        add("attn_k_norm", layer_norm);
    }
    match c.fused_qkv {
        true => add("attn_qkv", c.qkv_bias),
        false => ["attn_q", "attn_k", "attn_v"].iter().for_each(|t| add(t, c.qkv_bias)),
    }
    add("attn_output", c.o_bias);
    if c.mlp_gated && !c.fused_qkv {
        add("ffn_gate", c.mlp_bias);
    }
    add("ffn_up", c.mlp_bias);
    add("ffn_down", c.mlp_bias);
    names
}

/// Refuses a configuration the blocks cannot run, naming the file and the key at fault: counts of 0,
/// heads that do not split evenly, non-positive epsilon or rope base, an absurd context. Without this
/// a bad value surfaces as a panic deep in a kernel (a division by 0 KV heads) or as a candle shape
/// error that names neither. One check for both formats, after each architecture has adjusted its
/// [`Config`], so that the values checked are the ones the model runs with.
fn check_config(c: &Config, w: &Weights) -> Result<(), EngineError> {
    let hf = w.hf_config();
    let path = match hf {
        Some(_) => w.path().join("config.json"),
        None => w.path().to_path_buf(),
    };
    // GGUF keys carry the architecture's prefix; HF field names are shared by every architecture.
    let key = |gguf: &str, hf_name: &str| match hf {
        Some(_) => format!("`{hf_name}`"),
        None => format!("`{}.{gguf}`", c.architecture),
    };
    let bad = |problem: String| Err(EngineError::Model { path: path.display().to_string(), problem });
    let layers = key("block_count", "num_hidden_layers");
    let hidden = key("embedding_length", "hidden_size");
    let heads = key("attention.head_count", "num_attention_heads");
    let kv_heads = key("attention.head_count_kv", "num_key_value_heads");
    let head_dim = key("attention.key_length", "head_dim");
    let explicit_head_dim = match hf {
        Some(h) => h.get("head_dim").is_some_and(|v| !v.is_null()),
        None => w.meta(&format!("{}.attention.key_length", c.architecture)).is_some(),
    };
    for (k, v) in [(&layers, c.n_layer), (&hidden, c.n_embd), (&heads, c.n_head), (&kv_heads, c.n_kv_head)] {
        if v == 0 {
            return bad(format!("{k} is 0"));
        }
    }
    if explicit_head_dim && c.head_dim == 0 {
        return bad(format!("{head_dim} is 0"));
    }
    if !c.n_head.is_multiple_of(c.n_kv_head) {
        return bad(format!("{heads} ({}) is not a multiple of {kv_heads} ({})", c.n_head, c.n_kv_head));
    }
    if !explicit_head_dim && !c.n_embd.is_multiple_of(c.n_head) {
        return bad(format!(
            "{hidden} ({}) is not a multiple of {heads} ({}) and no {head_dim} is given",
            c.n_embd, c.n_head
        ));
    }
    if !c.head_dim.is_multiple_of(2) {
        return bad(format!("the head size ({}) is odd: rotary embeddings rotate pairs of dimensions", c.head_dim));
    }
    // GGUF says how many dimensions rotate; fewer than the head is partial rotation, which the
    // blocks do not implement (HF configs say it with `partial_rotary_factor`, refused as read).
    let rotated = format!("{}.rope.dimension_count", c.architecture);
    if hf.is_none() && w.meta(&rotated).is_some() {
        let n = w.meta_usize(&rotated)?;
        if n != c.head_dim {
            return bad(format!(
                "partial rotary embeddings (`{rotated}` {n} of {} dims) are not supported",
                c.head_dim
            ));
        }
    }
    // starcoder2's layer norm reads its epsilon from `norm_epsilon`.
    let eps = match c.norm {
        NormKind::Layer => key("attention.layer_norm_epsilon", "norm_epsilon"),
        _ => key("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
    };
    if !(c.eps > 0.0 && c.eps.is_finite()) {
        return bad(format!("{eps} is {}: must be more than 0", c.eps));
    }
    let local = c.rope_local.as_ref().map(|r| (key("rope.freq_base_swa", "rope_local_base_freq"), r.theta));
    for (k, theta) in std::iter::once((key("rope.freq_base", "rope_theta"), c.rope.theta)).chain(local) {
        if !(theta > 0.0 && theta.is_finite()) {
            return bad(format!("{k} is {theta}: must be more than 0"));
        }
    }
    let context = key("context_length", "max_position_embeddings");
    if c.context == 0 {
        return bad(format!("{context} is 0"));
    }
    if c.context > rope::MAX_CONTEXT {
        return bad(format!("{context} is {}: more than the {} positions supported", c.context, rope::MAX_CONTEXT));
    }
    Ok(())
}

/// Every `model_type` / `general.architecture` [`Model::load`] reads.
pub const SUPPORTED: &[&str] = &["llama", "qwen2", "qwen3", "mistral", "phi3", "starcoder2", "gemma2", "gemma3_text"];

/// The refusal for a GGUF file of an architecture read only from HF checkpoints.
fn hf_only(w: &Weights, arch: &str) -> EngineError {
    EngineError::Model {
        path: w.path().display().to_string(),
        problem: format!("`{arch}` is supported as an HF safetensors checkpoint directory, not as GGUF"),
    }
}

/// The sliding window of an HF config (`sliding_window`, null or absent for none; mistral-style
/// `use_sliding_window: false` turns it off).
fn hf_window(c: &serde_json::Value) -> Option<usize> {
    if c.get("use_sliding_window").and_then(|v| v.as_bool()) == Some(false) {
        return None;
    }
    c.get("sliding_window").and_then(|v| v.as_u64()).map(|v| v as usize)
}

/// The MLP activation named by `key` in an HF config.
fn hf_act(c: &serde_json::Value, key: &str, dir: &std::path::Path) -> Result<Act, EngineError> {
    match c.get(key).and_then(|v| v.as_str()) {
        Some("silu") | Some("swish") | None => Ok(Act::Silu),
        Some("gelu_pytorch_tanh") | Some("gelu_new") | Some("gelu_fast") => Ok(Act::GeluTanh),
        Some(other) => Err(EngineError::Model {
            path: dir.join("config.json").display().to_string(),
            problem: format!("activation `{key}: {other}` is not supported (supported: silu, gelu_pytorch_tanh)"),
        }),
    }
}

/// `num_hidden_layers` of an HF config, 0 when absent (`hf_config` reports that).
fn weights_layers(c: &serde_json::Value) -> usize {
    c.get("num_hidden_layers").and_then(|v| v.as_u64()).unwrap_or(0) as usize
}
