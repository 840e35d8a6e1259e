//! Shared commits: the writes of the hot path (a webhook's enqueue, a step's
//! record, an execution's end) from every execution in flight are put in one
//! transaction, their statements pipelined on one connection, and committed
//! once. Each caller still waits for its own commit, so nothing is
//! acknowledged before it is durable; PostgreSQL's cost per commit (a WAL
//! flush) is shared, which is what lets two daemons on two cores go past the
//! few thousand transactions a second this machine commits.
//!
//! A statement error aborts a PostgreSQL transaction: the batch is then rolled
//! back and every job is run again in a transaction of its own, so one bad
//! write never fails the others.
//!
//! Acceptance has a lane of its own: a webhook's enqueue (its `202`) goes to
//! a writer that commits only enqueues, so it never waits in the queue of
//! step writes nor in their transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::db;
use super::writes::{enqueue_in, finish_in, step_in, Tx};
use crate::engine::StepRecord;
use crate::store::{Admission, Enqueued, Finish, NewExecution, StoreError};

/// Jobs committed together at most.
const MAX_BATCH: usize = 256;
/// Transactions in flight at once per process: while one commits, the next
/// batch fills.
const WRITERS: usize = 3;

pub(super) enum Job {
    /// Step records of one execution, in order.
    Step {
        id: String,
        owner: String,
        records: Vec<StepRecord>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// The last step records and the end (not a park).
    Finish {
        id: String,
        owner: String,
        records: Vec<StepRecord>,
        finish: Finish,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Enqueue {
        new: Box<NewExecution>,
        admission: Admission,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Enqueued, StoreError>>,
    },
}

enum Outcome {
    Unit(Result<(), StoreError>),
    Enqueued(Result<Enqueued, StoreError>),
}

impl Outcome {
    fn failed_in_sql(&self) -> bool {
        matches!(
            self,
            Outcome::Unit(Err(StoreError::Database(_)))
                | Outcome::Enqueued(Err(StoreError::Database(_)))
        )
    }

    fn accepted(&self) -> bool {
        matches!(self, Outcome::Enqueued(Ok(Enqueued::Accepted(_))))
    }
}

/// The handle the store sends jobs to.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    /// Enqueues only: their own writer, so a `202` never waits behind steps.
    acceptances: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writers on the current runtime.
    pub(super) fn start(pool: Pool) -> Writer {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..WRITERS {
            tokio::spawn(run(pool.clone(), queue.clone()));
        }
        let (acceptances, accepted) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, Arc::new(Mutex::new(accepted))));
        Writer { jobs, acceptances }
    }

    pub(super) fn send(&self, job: Job) -> Result<(), StoreError> {
        let lane = match job {
            Job::Enqueue { .. } => &self.acceptances,
            Job::Step { .. } | Job::Finish { .. } => &self.jobs,
        };
        lane.send(job).map_err(|_| StoreError::Closed)
    }
}

async fn run(pool: Pool, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        commit(&pool, batch).await;
    }
}

async fn steps_in(
    tx: &Tx<'_>,
    id: &str,
    owner: &str,
    records: &[StepRecord],
) -> Result<(), StoreError> {
    for record in records {
        step_in(tx, id, owner, record).await?;
    }
    Ok(())
}

async fn run_job(tx: &Tx<'_>, job: &Job) -> Outcome {
    match job {
        Job::Step {
            id, owner, records, ..
        } => Outcome::Unit(steps_in(tx, id, owner, records).await),
        Job::Finish {
            id,
            owner,
            records,
            finish,
            ..
        } => Outcome::Unit(match steps_in(tx, id, owner, records).await {
            Ok(()) => finish_in(tx, id, owner, finish).await,
            Err(e) => Err(e),
        }),
        Job::Enqueue {
            new,
            admission,
            now,
            ..
        } => Outcome::Enqueued(enqueue_in(tx, new, admission, *now).await),
    }
}

fn answer(job: Job, outcome: Outcome) {
    match (job, outcome) {
        (Job::Step { reply, .. } | Job::Finish { reply, .. }, Outcome::Unit(result)) => {
            let _ = reply.send(result);
        }
        (Job::Enqueue { reply, .. }, Outcome::Enqueued(result)) => {
            let _ = reply.send(result);
        }
        (job, _) => fail(
            job,
            StoreError::Database("mismatched write reply".to_owned()),
        ),
    }
}

fn fail(job: Job, error: StoreError) {
    let message = error.to_string();
    let again = || StoreError::Database(message.clone());
    match job {
        Job::Step { reply, .. } | Job::Finish { reply, .. } => {
            let _ = reply.send(Err(again()));
        }
        Job::Enqueue { reply, .. } => {
            let _ = reply.send(Err(again()));
        }
    }
}

/// One transaction for the batch; on a statement error, one each.
async fn commit(pool: &Pool, batch: Vec<Job>) {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            let error = StoreError::Database(format!("PostgreSQL is unreachable: {e}"));
            for job in batch {
                fail(job, StoreError::Database(error.to_string()));
            }
            return;
        }
    };
    let outcomes = match client.transaction().await.map_err(db) {
        Err(e) => Err(Some(e)),
        Ok(tx) => {
            let outcomes =
                futures::future::join_all(batch.iter().map(|job| run_job(&tx, job))).await;
            if outcomes.iter().any(Outcome::failed_in_sql) {
                let _ = tx.rollback().await;
                Err(None)
            } else {
                let notified = if outcomes.iter().any(Outcome::accepted) {
                    tx.execute("NOTIFY scenarist_queue", &[])
                        .await
                        .map(|_| ())
                        .map_err(db)
                } else {
                    Ok(())
                };
                match notified {
                    Ok(()) => tx.commit().await.map_err(|e| Some(db(e))).map(|_| outcomes),
                    Err(e) => Err(Some(e)),
                }
            }
        }
    };
    drop(client);
    match outcomes {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                answer(job, outcome);
            }
        }
        // A statement failed: every job on its own, so the others go through.
        Err(None) => {
            for job in batch {
                commit_alone(pool, job).await;
            }
        }
        Err(Some(e)) => {
            for job in batch {
                fail(job, StoreError::Database(e.to_string()));
            }
        }
    }
}

async fn commit_alone(pool: &Pool, job: Job) {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            return fail(
                job,
                StoreError::Database(format!("PostgreSQL is unreachable: {e}")),
            )
        }
    };
    let tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return fail(job, db(e)),
    };
    let outcome = run_job(&tx, &job).await;
    if outcome.failed_in_sql() {
        let _ = tx.rollback().await;
        return answer(job, outcome);
    }
    if outcome.accepted() {
        if let Err(e) = tx.execute("NOTIFY scenarist_queue", &[]).await {
            return fail(job, db(e));
        }
    }
    match tx.commit().await {
        Ok(()) => answer(job, outcome),
        Err(e) => fail(job, db(e)),
    }
}
