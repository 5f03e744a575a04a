//! How requests' answers reach their callers. Waking a waiting caller costs the waker a
//! system call and often its core (the woken thread takes it), so the node loop, whose time
//! every request shares, hands a step's answers over in one go when there are several:
//! - to async callers through a task on their runtime, which completes them (completing a
//!   oneshot from the node loop wakes a runtime worker each time: with 256 tasks appending
//!   that took more than half of the leader's step time in a profile, 8.5% of all samples, the
//!   steps 15.3%; from a task on the runtime a completion only queues the woken task). The
//!   task is started on the runtime of a node's first async request, if it has worker threads;
//! - to every other caller (blocking, or async on a runtime without such a task) through a
//!   thread of the node's own, started the first time a step answers more than one of them (a
//!   single answer goes from the loop: one wake either way).

use crate::core::{ClientError, NodeId, Response};
use std::sync::mpsc::{Sender, SyncSender};
use std::thread::JoinHandle;

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

/// Answers completed (in order) when dropped: wherever that happens, on the task or thread
/// they were handed to, in a channel dropped with a runtime that shut down, or here, none is
/// lost.
#[derive(Default)]
struct Gathered(Vec<(Reply, Answer)>);

impl Drop for Gathered {
    fn drop(&mut self) {
        self.0.drain(..).for_each(|(reply, result)| reply.send(result));
    }
}

impl Gathered {
    /// Takes the answers, leaving room for as many.
    fn take(&mut self) -> Gathered {
        std::mem::replace(self, Gathered(Vec::with_capacity(self.0.len())))
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

/// The thread that completes the answers the task does not, and the way to it.
struct Waker {
    to: Sender<Gathered>,
    thread: JoinHandle<()>,
}

/// The node loop's outgoing answers.
pub(super) struct Answers {
    /// Names the thread.
    node: NodeId,
    #[cfg(feature = "tokio")]
    dispatch: Option<Dispatch>,
    #[cfg(feature = "tokio")]
    gathered: Gathered,
    /// Answers for the thread (or the loop): the callers the task does not answer.
    others: Gathered,
    /// Started the first time a step answers more than one of `others`; `None` before,
    /// or if it could not be started (then they are answered from the loop).
    waker: Option<Waker>,
    /// Set if the thread could not be started: not tried again.
    no_thread: bool,
}

impl Answers {
    /// The answers of node `node`'s loop.
    pub(super) fn new(node: NodeId) -> Answers {
        Answers {
            node,
            #[cfg(feature = "tokio")]
            dispatch: None,
            #[cfg(feature = "tokio")]
            gathered: Gathered::default(),
            others: Gathered::default(),
            waker: None,
            no_thread: false,
        }
    }

    /// Async callers' answers go through `dispatch` from now on.
    #[cfg(feature = "tokio")]
    pub(super) fn dispatch_through(&mut self, dispatch: Dispatch) {
        self.dispatch = Some(dispatch);
    }

    /// Answers a request: with the others of this step at [`flush`](Self::flush).
    pub(super) fn send(&mut self, reply: Reply, result: Answer) {
        match reply {
            #[cfg(feature = "tokio")]
            reply @ Reply::Async(_) if self.dispatch.is_some() => self.gathered.0.push((reply, result)),
            reply => self.others.0.push((reply, result)),
        }
    }

    /// Hands the gathered answers over, in the order they were given: async ones to the task
    /// (directly, and from then on, if it is gone with its runtime), the others to the thread
    /// if there are several, a single one directly.
    pub(super) fn flush(&mut self) {
        #[cfg(feature = "tokio")]
        if let Some(Dispatch(to)) = self.dispatch.as_ref().filter(|_| !self.gathered.0.is_empty()) {
            if to.send(self.gathered.take()).is_err() {
                self.dispatch = None; // The answers were completed as the error dropped them.
            }
        }
        if self.others.0.len() > 1 {
            let gathered = self.others.take();
            match self.waker() {
                Some(waker) => drop(waker.to.send(gathered)), // An error completes them.
                None => drop(gathered),
            }
        } else if let Some((reply, result)) = self.others.0.pop() {
            reply.send(result);
        }
    }

    fn waker(&mut self) -> Option<&Waker> {
        if self.waker.is_none() && !self.no_thread {
            let (to, gathered) = std::sync::mpsc::channel::<Gathered>();
            let thread = std::thread::Builder::new()
                .name(format!("raft-{}-answers", self.node))
                .spawn(move || gathered.iter().for_each(drop)); // Dropping completes them.
            match thread {
                Ok(thread) => self.waker = Some(Waker { to, thread }),
                Err(_) => self.no_thread = true,
            }
        }
        self.waker.as_ref()
    }

    /// Flushes, then waits until every answer handed to the thread is given: what is
    /// answered after this comes after them.
    pub(super) fn drain(&mut self) {
        self.flush();
        if let Some(Waker { to, thread }) = self.waker.take() {
            drop(to);
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Seq;
    use std::sync::mpsc::{sync_channel, Receiver};
    #[cfg(feature = "tokio")]
    use tokio::sync::oneshot;

    fn appended(seq: u64) -> Answer {
        Ok(Response::Appended { seq: Seq(seq), responses: Vec::new() })
    }

    #[test]
    #[cfg(feature = "tokio")]
    fn answers_handed_to_a_runtime_that_shuts_down_are_still_given() {
        // A runtime that nothing drives: its task never runs.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut answers = Answers::new(NodeId(1));
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
    #[cfg(feature = "tokio")]
    fn only_a_runtime_with_workers_gets_the_task() {
        let workers = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        assert!(workers.block_on(async { Dispatch::spawn() }).is_some());
        let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(current.block_on(async { Dispatch::spawn() }).is_none());
    }

    #[test]
    #[cfg(feature = "tokio")]
    fn outside_a_runtime_there_is_no_task_and_answers_go_as_blocking_ones_do() {
        assert!(Dispatch::spawn().is_none());
        let mut answers = Answers::new(NodeId(1));
        let (reply, mut answer) = oneshot::channel();
        answers.send(Reply::Async(reply), appended(3));
        answers.flush();
        assert_eq!(answer.try_recv().unwrap(), appended(3), "a single one from the loop");
        let (first, mut first_answer) = oneshot::channel();
        let (second, second_answer) = oneshot::channel();
        answers.send(Reply::Async(first), appended(4));
        answers.send(Reply::Async(second), appended(5));
        answers.flush();
        assert!(answers.waker.is_some(), "several through the thread");
        answers.drain();
        assert_eq!(first_answer.try_recv().unwrap(), appended(4));
        assert_eq!(second_answer.blocking_recv().unwrap(), appended(5));
    }

    fn blocking(answers: &mut Answers, seq: u64) -> Receiver<Answer> {
        let (reply, answer) = sync_channel(1);
        answers.send(Reply::Blocking(reply), appended(seq));
        answer
    }

    #[test]
    fn a_single_blocking_answer_goes_at_the_flush_from_the_loop() {
        let mut answers = Answers::new(NodeId(1));
        let answer = blocking(&mut answers, 1);
        assert!(answer.try_recv().is_err(), "gathered until the step ends");
        answers.flush();
        assert_eq!(answer.try_recv().unwrap(), appended(1));
        assert!(answers.waker.is_none(), "no thread for one answer");
    }

    #[test]
    fn several_blocking_answers_go_through_the_thread_and_all_arrive_before_a_drain_ends() {
        let mut answers = Answers::new(NodeId(1));
        let mut waiting = Vec::new();
        for step in 0..50u64 {
            waiting.extend((0..3).map(|i| (step * 3 + i, blocking(&mut answers, step * 3 + i))));
            answers.flush();
        }
        assert!(answers.waker.is_some(), "steps of three answers started the thread");
        // What is answered after the drain comes after every answer handed over.
        answers.drain();
        for (seq, answer) in waiting {
            assert_eq!(answer.try_recv().unwrap(), appended(seq));
        }
        assert!(answers.waker.is_none());
        // A later step with several starts a new thread.
        let (first, second) = (blocking(&mut answers, 200), blocking(&mut answers, 201));
        answers.flush();
        assert_eq!((first.recv().unwrap(), second.recv().unwrap()), (appended(200), appended(201)));
    }

    #[test]
    fn answers_still_gathered_when_the_loop_ends_are_given() {
        let mut answers = Answers::new(NodeId(1));
        let (first, second) = (blocking(&mut answers, 1), blocking(&mut answers, 2));
        answers.flush();
        let third = blocking(&mut answers, 3);
        drop(answers);
        assert_eq!(first.recv().unwrap(), appended(1));
        assert_eq!(second.recv().unwrap(), appended(2));
        assert_eq!(third.recv().unwrap(), appended(3));
    }
}
