//! Tasks domain: a user's to-do items, their rules, and the repository port.
#![doc = include_str!("../README.md")]

mod ports;
mod search;
mod task;
mod values;

pub use ports::{TaskError, TaskFilter, TaskRepository};
pub use search::{fold_for_search, has_trigram};
pub use task::{NewTask, Task, TaskChange, TaskPatch};
pub use values::{Priority, PriorityError, TaskDescription, TaskDescriptionError, TaskTitle, TaskTitleError};

#[cfg(feature = "mock")]
pub use ports::MockTaskRepository;
