//! A `SELECT` built from a filter: each condition is added with its value
//! bound (never spliced into the text), then the newest rows first.

use rusqlite::types::Value;

use crate::store::filter::Condition;
use rusqlite::{Connection, Row};

/// A query under construction.
pub(super) struct Select {
    sql: String,
    values: Vec<Value>,
}

impl Select {
    /// `SELECT {columns} FROM {table}`, with no condition yet.
    pub(super) fn from(columns: &str, table: &str) -> Self {
        Self {
            sql: format!("SELECT {columns} FROM {table} WHERE 1 = 1"),
            values: Vec::new(),
        }
    }

    /// Add ` AND {clause}`, whose one `?` stands for `value`.
    pub(super) fn and(&mut self, clause: &str, value: impl Into<Value>) {
        self.values.push(value.into());
        let placeholder = format!("?{}", self.values.len());
        self.sql.push_str(" AND ");
        self.sql.push_str(&clause.replace('?', &placeholder));
    }

    /// Add ` AND {clause}`, which binds nothing (built from known names).
    pub(super) fn and_fixed(&mut self, clause: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
    }

    /// Add a filter's conditions.
    pub(super) fn matching(mut self, conditions: Vec<Condition>) -> Self {
        for condition in conditions {
            match condition {
                Condition::Equals(column, value) => self.and(&format!("{column} = ?"), value),
                Condition::AtLeast(column, value) => self.and(&format!("{column} >= ?"), value),
                Condition::Below(column, value) => self.and(&format!("{column} < ?"), value),
                Condition::HoldsJsonString(column, value) => self.and(
                    &format!("instr({column}, ?) > 0"),
                    serde_json::to_string(&value).expect("a string serializes"),
                ),
                Condition::OneOf(column, values) => {
                    let first = self.values.len() + 1;
                    let placeholders: Vec<String> = (first..first + values.len())
                        .map(|n| format!("?{n}"))
                        .collect();
                    self.values.extend(values.into_iter().map(Value::from));
                    self.and_fixed(&format!("{column} IN ({})", placeholders.join(", ")));
                }
            }
        }
        self
    }

    /// The rows, newest (highest `id`) first, at most `limit`.
    pub(super) fn newest<T>(
        self,
        limit: usize,
        connection: &Connection,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.newest_by("id", limit, connection, row)
    }

    /// The rows, highest `key` (a column in arrival order) first, at most
    /// `limit`.
    pub(super) fn newest_by<T>(
        mut self,
        key: &str,
        limit: usize,
        connection: &Connection,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.sql
            .push_str(&format!(" ORDER BY {key} DESC LIMIT {limit}"));
        connection
            .prepare(&self.sql)?
            .query_map(rusqlite::params_from_iter(self.values), row)?
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_each_condition_in_order() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER);
                 INSERT INTO t (a, b) VALUES ('x', 1), ('x', 2), ('y', 3), ('x', 4);",
            )
            .unwrap();
        let mut select = Select::from("id", "t");
        select.and("a = ?", "x".to_owned());
        select.and("b < ?", 4);
        select.and_fixed("id > 0");
        let ids = select
            .newest(10, &connection, |row| row.get::<_, i64>(0))
            .unwrap();
        assert_eq!(ids, [2, 1]);
        let one = Select::from("id", "t")
            .newest(1, &connection, |row| row.get::<_, i64>(0))
            .unwrap();
        assert_eq!(one, [4]);
    }
}
