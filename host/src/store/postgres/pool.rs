//! Connections to PostgreSQL: a fixed-size pool of `tokio-postgres`
//! clients, each with its prepared statements, driven on the store's own
//! runtime. A connection that broke is replaced when next taken.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use tokio_postgres::{Client, GenericClient, NoTls, Statement};

use crate::store::StoreError;

/// A client and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// Prepare `sql` on `client` once per connection (`statements` is that
/// connection's cache; `client` may be one of its transactions).
pub(super) async fn prepared(
    client: &impl GenericClient,
    statements: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, tokio_postgres::Error> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql).await?;
    statements.insert(sql, statement.clone());
    Ok(statement)
}

impl Conn {
    /// The client, and the statement cache to use with it or its
    /// transactions.
    pub(super) fn split(&mut self) -> (&mut Client, &mut HashMap<&'static str, Statement>) {
        (&mut self.client, &mut self.statements)
    }

    /// `sql`, prepared on this connection.
    pub(super) async fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<Statement, tokio_postgres::Error> {
        prepared(&self.client, &mut self.statements, sql).await
    }
}

/// Open one connection, with `search_path` set to `schema` (quoted: the
/// config only allows plain names) and commits waiting for the WAL flush.
pub(super) async fn connect(
    config: &tokio_postgres::Config,
    schema: &str,
) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(backend)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "a PostgreSQL connection ended");
        }
    });
    client
        .batch_execute(&format!(
            "SET search_path TO \"{schema}\"; SET synchronous_commit TO on; SET application_name TO 'wasp'"
        ))
        .await
        .map_err(backend)?;
    Ok(client)
}

/// A PostgreSQL error as a store error, with its detail.
pub(super) fn backend(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Backend(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Backend(format!("PostgreSQL: {error}")),
    }
}

/// The pool.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    schema: String,
    idle: async_channel::Receiver<Conn>,
    returned: async_channel::Sender<Conn>,
    /// Connections not yet opened (opened lazily, up to the pool size).
    unopened: std::sync::atomic::AtomicUsize,
}

impl Pool {
    /// A pool of up to `size` connections.
    pub(super) fn new(config: tokio_postgres::Config, schema: String, size: usize) -> Self {
        let (returned, idle) = async_channel::unbounded();
        Self {
            config,
            schema,
            idle,
            returned,
            unopened: std::sync::atomic::AtomicUsize::new(size.max(1)),
        }
    }

    /// Take a connection (waiting for one when all are in use).
    pub(super) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        use std::sync::atomic::Ordering;
        let conn = match self.idle.try_recv() {
            Ok(conn) => Some(conn),
            Err(_) => {
                let opened = self
                    .unopened
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok();
                if opened {
                    None
                } else {
                    Some(self.idle.recv().await.map_err(|_| StoreError::Closed)?)
                }
            }
        };
        let conn = match conn {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => match connect(&self.config, &self.schema).await {
                Ok(client) => Conn {
                    client,
                    statements: HashMap::new(),
                },
                Err(error) => {
                    // The slot stays free for the next try.
                    self.unopened.fetch_add(1, Ordering::AcqRel);
                    return Err(error);
                }
            },
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
        })
    }
}

/// A connection taken from the pool; it goes back when dropped.
pub(super) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
}

impl Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("a pooled connection")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a pooled connection")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if conn.client.is_closed() {
                self.pool
                    .unopened
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            } else {
                let _ = self.pool.returned.try_send(conn);
            }
        }
    }
}
