//! The role a task plays in a suite.

/// What a task is for, in the order tasks are listed: a task is screened for leakage against
/// the examples every earlier role trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Pretrain,
    Upstream,
    Tuning,
    Downstream,
}

impl std::fmt::Display for Role {
    /// `upstream`, `tuning`, ...: as messages name it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format!("{self:?}").to_lowercase())
    }
}

impl Role {
    /// Tuning and downstream tasks: few-shot cells run on them, they have a `shift`, and their
    /// examples must not be what an earlier role trained on.
    pub fn is_transfer(self) -> bool {
        matches!(self, Role::Tuning | Role::Downstream)
    }
}
