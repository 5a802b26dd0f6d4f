//! In-process inference on candle: model cards and fetching, GGUF and safetensors loading, tokenizers,
//! chat templates, sampling and batched generation. Everything above the engine talks to it through the
//! [`Generator`] trait, so tests can script a model with [`Scripted`].

pub mod cards;
pub mod chat_template;
pub mod fetch;
mod generator;
pub mod gguf_info;
pub mod hf_names;
pub mod kernels;
pub mod resolve;
pub mod tokenizer;

pub mod batch;
pub mod codec;
pub mod device;
#[allow(clippy::module_inception)]
pub mod engine;
pub mod kv_cache;
pub mod load;
mod mapped;
pub mod models;
pub mod pyjson;
pub mod remote;
pub mod sampling;
pub mod weights;

pub use engine::{Engine, EngineOptions, GenerationStats, TextCodec};
pub use generator::{
    Completion, EngineError, FinishReason, Generator, Message, Prompt, Request, SamplingParams, Scripted,
};
pub use load::{load, LoadOptions, LoadedModel};
