//! How requests' answers reach their callers. A blocking caller waits on its own channel. An
//! async caller's answers are gathered over a node-loop step and handed, all at once, to a task
//! on the caller's runtime that completes them: completing a oneshot from the node loop's
//! thread wakes a runtime worker each time (a futex wake, and often the loop's thread loses its
//! core to the woken worker), which with 256 tasks appending took more than half of the
//! leader's step time in a profile (8.5% of all samples, the steps 15.3%); from a task on the
//! runtime a completion only queues the woken task. The task is started on the runtime of a
//! node's first async request, if that runtime has worker threads.

use crate::core::{ClientError, Response};
use std::sync::mpsc::SyncSender;

type Answer = Result<Response, ClientError>;

/// Where a request's one answer goes.
pub(super) enum Reply {
    Blocking(SyncSender<Answer>),
    #[cfg(feature = "tokio")]
    Async(tokio::sync::oneshot::Sender<Answer>),
}

impl Reply {
    /// Answers now, from this thread.
    pub(super) fn send(self, result: Answer) {
        match self {
            Reply::Blocking(sender) => drop(sender.send(result)),
            #[cfg(feature = "tokio")]
            Reply::Async(sender) => drop(sender.send(result)),
        }
    }
}

/// Answers to async callers, completed (in order) when dropped: wherever that happens, on the
/// task, in a channel dropped with a runtime that shut down, or here, none is lost.
#[cfg(feature = "tokio")]
#[derive(Default)]
struct Gathered(Vec<(tokio::sync::oneshot::Sender<Answer>, Answer)>);

#[cfg(feature = "tokio")]
impl Drop for Gathered {
    fn drop(&mut self) {
        self.0.drain(..).for_each(|(reply, result)| drop(reply.send(result)));
    }
}

/// A task on an async caller's runtime that completes the answers the node loop gathered.
#[cfg(feature = "tokio")]
pub(super) struct Dispatch(tokio::sync::mpsc::UnboundedSender<Gathered>);

#[cfg(feature = "tokio")]
impl Dispatch {
    /// Starts the task on the current runtime if it has worker threads; `None` outside one,
    /// or on a current-thread runtime, which runs tasks only while a thread drives it: answers
    /// to tasks of another runtime would wait for it. The task ends when the node loop does.
    pub(super) fn spawn() -> Option<Dispatch> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        (runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread).then(|| Dispatch::spawn_on(&runtime))
    }

    fn spawn_on(runtime: &tokio::runtime::Handle) -> Dispatch {
        let (sender, mut gathered) = tokio::sync::mpsc::unbounded_channel::<Gathered>();
        runtime.spawn(async move {
            while let Some(answers) = gathered.recv().await {
                drop(answers); // Completes them.
            }
        });
        Dispatch(sender)
    }
}

/// The node loop's outgoing answers.
#[derive(Default)]
pub(super) struct Answers {
    #[cfg(feature = "tokio")]
    dispatch: Option<Dispatch>,
    #[cfg(feature = "tokio")]
    gathered: Gathered,
}

impl Answers {
    /// Async callers' answers go through `dispatch` from now on.
    #[cfg(feature = "tokio")]
    pub(super) fn dispatch_through(&mut self, dispatch: Dispatch) {
        self.dispatch = Some(dispatch);
    }

    /// Answers a request: at once, or with the others of this step at [`flush`](Self::flush).
    pub(super) fn send(&mut self, reply: Reply, result: Answer) {
        match reply {
            #[cfg(feature = "tokio")]
            Reply::Async(sender) if self.dispatch.is_some() => self.gathered.0.push((sender, result)),
            other => other.send(result),
        }
    }

    /// Hands the gathered answers over, in the order they were given (directly, and from
    /// then on, if the task is gone with its runtime).
    pub(super) fn flush(&mut self) {
        #[cfg(feature = "tokio")]
        if let Some(Dispatch(to)) = self.dispatch.as_ref().filter(|_| !self.gathered.0.is_empty()) {
            // The next step's answers get room for as many as this one's.
            let room = Gathered(Vec::with_capacity(self.gathered.0.len()));
            if to.send(std::mem::replace(&mut self.gathered, room)).is_err() {
                self.dispatch = None; // The answers were completed as the error dropped them.
            }
        }
    }
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use crate::core::Seq;
    use tokio::sync::oneshot;

    fn appended(seq: u64) -> Answer {
        Ok(Response::Appended { seq: Seq(seq), responses: Vec::new() })
    }

    #[test]
    fn answers_handed_to_a_runtime_that_shuts_down_are_still_given() {
        // A runtime that nothing drives: its task never runs.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut answers = Answers::default();
        answers.dispatch_through(Dispatch::spawn_on(runtime.handle()));
        let (first, mut first_answer) = oneshot::channel();
        answers.send(Reply::Async(first), appended(1));
        assert!(first_answer.try_recv().is_err(), "gathered until the step ends");
        answers.flush();
        // The task never ran: its runtime shuts down with the answers in its channel.
        drop(runtime);
        assert_eq!(first_answer.try_recv().unwrap(), appended(1));
        // With the task gone, answers go directly.
        let (second, mut second_answer) = oneshot::channel();
        answers.send(Reply::Async(second), appended(2));
        answers.flush();
        assert_eq!(second_answer.try_recv().unwrap(), appended(2));
        assert!(answers.dispatch.is_none());
    }

    #[test]
    fn only_a_runtime_with_workers_gets_the_task() {
        let workers = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        assert!(workers.block_on(async { Dispatch::spawn() }).is_some());
        let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(current.block_on(async { Dispatch::spawn() }).is_none());
    }

    #[test]
    fn outside_a_runtime_there_is_no_task_and_answers_go_at_once() {
        assert!(Dispatch::spawn().is_none());
        let mut answers = Answers::default();
        let (reply, mut answer) = oneshot::channel();
        answers.send(Reply::Async(reply), appended(3));
        assert_eq!(answer.try_recv().unwrap(), appended(3));
    }
}
