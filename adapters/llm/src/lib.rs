//! Language model adapters for the `LanguageModel` port of `parley-conversations`:
//! an OpenAI-compatible streaming client, the offline task assistant and the
//! offline séance spirit.
#![doc = include_str!("../README.md")]

mod offline;
mod openai;
mod spirit;

pub use offline::OfflineAssistant;
pub use openai::{OpenAiConfig, OpenAiLanguageModel};
pub use spirit::OfflineSpirit;
