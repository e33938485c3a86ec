//! Threads for sessions, with a few kept waiting between connections.
//!
//! Starting a thread takes tens of microseconds on a small VM, and a new
//! connection's handshake waits for it; a thread that finished a session and
//! waits for the next one removes that from the handshake's critical path.
//! At most [`SPARE_THREADS`] wait; a busier moment starts new threads, and
//! the surplus exits once the burst is over.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

/// Idle threads kept for the next connections.
const SPARE_THREADS: usize = 16;

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
}

/// A set of session threads that grows on demand.
#[derive(Clone)]
pub(crate) struct Workers {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    stack_size: usize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

impl Workers {
    pub(crate) fn new(stack_size: usize) -> Self {
        Workers {
            shared: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            stack_size,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on a waiting thread, or on a new one if none waits.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        // Boxed before it goes anywhere: a session's job holds its
        // connection's handshake (a few KiB), and a new thread that got it
        // inline would copy it into several of its first stack frames,
        // stack pages that stay resident for as long as the session lasts.
        let job: Job = Box::new(job);
        let mut queue = self.queue();
        if queue.idle > queue.jobs.len() {
            queue.jobs.push_back(job);
            drop(queue);
            self.shared.1.notify_one();
            return Ok(());
        }
        drop(queue);
        let workers = self.clone();
        thread::Builder::new()
            .name("session".into())
            .stack_size(self.stack_size)
            .spawn(move || workers.work(job))
            .map(drop)
    }

    /// A thread's life: run its job, then wait for more while few others wait.
    fn work(&self, first: Job) {
        let mut job = first;
        loop {
            job();
            let mut queue = self.queue();
            if queue.idle >= SPARE_THREADS {
                return;
            }
            queue.idle += 1;
            loop {
                if let Some(next) = queue.jobs.pop_front() {
                    queue.idle -= 1;
                    job = next;
                    break;
                }
                queue = self.shared.1.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_waiting_thread_takes_the_next_job() {
        let workers = Workers::new(64 << 10);
        let (done, finished) = mpsc::channel();
        let report = done.clone();
        workers
            .run(move || report.send(thread::current().id()).expect("send"))
            .expect("run");
        let first = finished.recv().expect("first job ran");
        // The only thread there is finishes its job, then waits.
        while workers.queue().idle == 0 {
            thread::yield_now();
        }
        workers
            .run(move || done.send(thread::current().id()).expect("send"))
            .expect("run");
        assert_eq!(finished.recv().expect("second job ran"), first);
    }

    #[test]
    fn many_jobs_at_once_all_run() {
        let workers = Workers::new(64 << 10);
        let (done, finished) = mpsc::channel();
        for i in 0..100 {
            let done = done.clone();
            workers
                .run(move || done.send(i).expect("send"))
                .expect("run");
        }
        let mut seen: Vec<i32> = (0..100).map(|_| finished.recv().expect("ran")).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }
}
