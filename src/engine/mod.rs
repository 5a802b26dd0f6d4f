//! In-process inference on candle: model cards and fetching, GGUF and safetensors loading, tokenizers,
//! chat templates, sampling and batched generation. Everything above the engine talks to it through the
//! [`Generator`] trait, so tests can script a model with [`Scripted`].

mod generator;

pub use generator::{
    Completion, EngineError, FinishReason, Generator, Message, Prompt, Request, SamplingParams,
    Scripted,
};
