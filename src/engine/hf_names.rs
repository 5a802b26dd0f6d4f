//! Tensor names: model files ask [`crate::engine::weights::Weights`] for tensors by GGUF-style logical
//! names (`blk.3.attn_q.weight`), and these functions give their HF safetensors names, in the llama
//! layout ([`hf_name`]) or with an architecture's own module names ([`hf_name_for`]).

/// The HF `model_type` of a checkpoint's configuration.
pub(crate) fn model_type(config: &serde_json::Value) -> &str {
    config.get("model_type").and_then(|v| v.as_str()).unwrap_or("")
}

/// [`hf_name`] for an architecture whose modules are named differently (`model_type`): starcoder2's
/// plain MLP, phi3's fused projections, gemma's four norms per block.
pub fn hf_name_for(arch: &str, gguf: &str) -> Option<String> {
    let renamed = |part: &str| -> Option<&'static str> {
        Some(match (arch, part) {
            ("starcoder2", "ffn_up") => "mlp.c_fc",
            ("starcoder2", "ffn_down") => "mlp.c_proj",
            ("phi3", "attn_qkv") => "self_attn.qkv_proj",
            ("phi3", "ffn_up") => "mlp.gate_up_proj",
            ("gemma2" | "gemma3_text", "attn_post_norm") => "post_attention_layernorm",
            ("gemma2" | "gemma3_text", "ffn_norm") => "pre_feedforward_layernorm",
            ("gemma2" | "gemma3_text", "ffn_post_norm") => "post_feedforward_layernorm",
            _ => return None,
        })
    };
    if let Some(rest) = gguf.strip_prefix("blk.") {
        let (layer, rest) = rest.split_once('.')?;
        let (part, suffix) = rest.split_once('.')?;
        if let Some(hf) = renamed(part) {
            return Some(format!("model.layers.{layer}.{hf}.{suffix}"));
        }
    }
    hf_name(gguf)
}

/// Translates a GGUF tensor name (`blk.3.attn_q.weight`) to its HF safetensors name
/// (`model.layers.3.self_attn.q_proj.weight`) in the llama layout; None for names without an HF
/// counterpart.
pub fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    if let Some(suffix) = gguf.strip_prefix("output_norm.") {
        return Some(format!("model.norm.{suffix}"));
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, suffix) = rest.split_once('.')?;
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hf_names() {
        assert_eq!(hf_name("blk.12.attn_q.bias").as_deref(), Some("model.layers.12.self_attn.q_proj.bias"));
        assert_eq!(hf_name("blk.0.ffn_norm.weight").as_deref(), Some("model.layers.0.post_attention_layernorm.weight"));
        assert_eq!(hf_name("output.weight").as_deref(), Some("lm_head.weight"));
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(hf_name("output_norm.bias").as_deref(), Some("model.norm.bias"));
    }

    #[test]
    fn architectures_rename_their_modules() {
        assert_eq!(
            hf_name_for("phi3", "blk.1.attn_qkv.weight").as_deref(),
            Some("model.layers.1.self_attn.qkv_proj.weight")
        );
        assert_eq!(hf_name_for("starcoder2", "blk.0.ffn_up.bias").as_deref(), Some("model.layers.0.mlp.c_fc.bias"));
        assert_eq!(
            hf_name_for("gemma2", "blk.2.ffn_norm.weight").as_deref(),
            Some("model.layers.2.pre_feedforward_layernorm.weight")
        );
        // Other architectures keep llama's names.
        assert_eq!(hf_name_for("mistral", "blk.0.ffn_up.weight").as_deref(), Some("model.layers.0.mlp.up_proj.weight"));
    }
}
