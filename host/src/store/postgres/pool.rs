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

/// The pool: a permit per connection, so a broken connection frees its
/// place for a new one and nobody waits for a connection that is gone.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    schema: String,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    idle: std::sync::Mutex<Vec<Conn>>,
}

impl Pool {
    /// A pool of up to `size` connections.
    pub(super) fn new(config: tokio_postgres::Config, schema: String, size: usize) -> Self {
        Self {
            config,
            schema,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(size.max(1))),
            idle: std::sync::Mutex::default(),
        }
    }

    /// Take a connection (waiting while all are in use), opening a new one
    /// when none is idle or the idle one broke.
    pub(super) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = self.idle.lock().expect("pool lock").pop();
        let conn = match idle {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => Conn {
                client: connect(&self.config, &self.schema).await?,
                statements: HashMap::new(),
            },
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }
}

/// A connection taken from the pool; it goes back when dropped.
pub(super) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
    _permit: tokio::sync::OwnedSemaphorePermit,
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
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool.idle.lock().expect("pool lock").push(conn);
        }
    }
}
