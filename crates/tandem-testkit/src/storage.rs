//! Where the nodes of a test region keep their metadata and blobs.
//!
//! [`SharedStorage::sqlite`] is the embedded layout: nothing in the config, so the nodes of a
//! region share the first node's data directory (one SQLite file, one blob directory).
//! [`SharedStorage::postgres_s3`] is the layout of a region that outgrew one machine: a
//! PostgreSQL database of its own (created on the server named by `TANDEM_TEST_PG_URL`, dropped
//! with this value) and a prefix of its own in the bucket named by `TANDEM_TEST_S3_URL`, as
//! `scripts/pg-server.sh run` and `scripts/s3-server.sh run` export them. Without those
//! variables it returns `None` (the test skips), unless `TANDEM_REQUIRE_PG=1` or
//! `TANDEM_REQUIRE_S3=1`, which make a missing server a failure (CI).
//!
//! The S3 secret goes into a file (`s3_secret_access_key_file`), never into a config or a log.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::RegionProcess;

/// The metadata and blob backends of a test region, shared by all its nodes.
pub struct SharedStorage {
    shared: Option<Shared>,
}

/// PostgreSQL + S3: the database (dropped on drop), the blob URL and the S3 settings.
struct Shared {
    db: TestDatabase,
    blob_url: String,
    endpoint: String,
    region: String,
    key_id: String,
    dir: tempfile::TempDir,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(flag: &str) -> bool {
    var(flag).as_deref() == Some("1")
}

impl SharedStorage {
    /// SQLite and local files in the first node's data directory.
    pub fn sqlite() -> SharedStorage {
        SharedStorage { shared: None }
    }

    /// A fresh PostgreSQL database and a fresh bucket prefix (named after `test`), or `None`
    /// when the servers are not configured and not required.
    pub async fn postgres_s3(test: &str) -> Option<SharedStorage> {
        let pg = var("TANDEM_TEST_PG_URL");
        let s3 = var("TANDEM_TEST_S3_URL");
        assert!(
            pg.is_some() || !required("TANDEM_REQUIRE_PG"),
            "TANDEM_REQUIRE_PG=1 but TANDEM_TEST_PG_URL is not set: run the test under \
             scripts/pg-server.sh run"
        );
        assert!(
            s3.is_some() || !required("TANDEM_REQUIRE_S3"),
            "TANDEM_REQUIRE_S3=1 but TANDEM_TEST_S3_URL is not set: run the test under \
             scripts/s3-server.sh run"
        );
        let (Some(pg), Some(s3)) = (pg, s3) else {
            eprintln!(
                "skipped ({test} on PostgreSQL + S3): TANDEM_TEST_PG_URL or TANDEM_TEST_S3_URL is \
                 not set (run under scripts/pg-server.sh run scripts/s3-server.sh run)"
            );
            return None;
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db = TestDatabase::create(&pg, &format!("tandem_{}_{id}", sanitize(test))).await;
        let dir = tempfile::Builder::new()
            .prefix("tandem-s3-")
            .tempdir()
            .expect("tempdir");
        let secret = var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY for the S3 server");
        std::fs::write(dir.path().join("s3-secret"), format!("{secret}\n")).expect("secret file");
        Some(SharedStorage {
            shared: Some(Shared {
                db,
                blob_url: format!("{}/{}-{id}", s3.trim_end_matches('/'), sanitize(test)),
                endpoint: var("TANDEM_BACKUP_S3_ENDPOINT")
                    .or_else(|| var("AWS_ENDPOINT_URL"))
                    .expect("TANDEM_BACKUP_S3_ENDPOINT or AWS_ENDPOINT_URL for the S3 server"),
                region: var("AWS_REGION").unwrap_or_else(|| "garage".into()),
                key_id: var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID for the S3 server"),
                dir,
            }),
        })
    }

    /// `"sqlite"` or `"postgres+s3"`, for messages.
    pub fn label(&self) -> &'static str {
        if self.shared.is_some() {
            "postgres+s3"
        } else {
            "sqlite"
        }
    }

    /// The `[storage]` table for every node's config (none for SQLite). It is a TOML table:
    /// put it after the top-level lines and after other tables' lines, as [`Self::with`] does.
    pub fn config_lines(&self) -> Vec<String> {
        let Some(s) = &self.shared else {
            return Vec::new();
        };
        vec![
            "[storage]".into(),
            format!("metadata_url = \"{}\"", s.db.url),
            format!("blob_url = \"{}\"", s.blob_url),
            format!("s3_endpoint = \"{}\"", s.endpoint),
            format!("s3_region = \"{}\"", s.region),
            format!("s3_access_key_id = \"{}\"", s.key_id),
            format!(
                "s3_secret_access_key_file = \"{}\"",
                s.dir.path().join("s3-secret").display()
            ),
        ]
    }

    /// `lines` (top-level keys and whole tables), then [`Self::config_lines`].
    pub fn with(&self, lines: &[&str]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.to_string())
            .chain(self.config_lines())
            .collect()
    }

    /// The metadata URL the nodes of `region` use, for a test that opens the store itself.
    pub fn metadata_url(&self, region: &RegionProcess) -> String {
        match &self.shared {
            Some(s) => s.db.url.clone(),
            None => format!("sqlite://{}", region.data_dir().join("tandem.db").display()),
        }
    }

    /// The blob URL the nodes of `region` use (S3 settings from the environment, as
    /// `tandem_objects::S3Options::from_env` reads them).
    pub fn blob_url(&self, region: &RegionProcess) -> String {
        match &self.shared {
            Some(s) => s.blob_url.clone(),
            None => format!("file://{}", region.data_dir().join("blobs").display()),
        }
    }
}

/// Runs a black-box scenario `async fn scenario(storage: SharedStorage)` once per backend: a
/// module `name` with the tests `name::sqlite` and `name::postgres_s3` (which skips without
/// the servers, see [`SharedStorage::postgres_s3`]). The test crate needs `tokio`.
///
/// ```ignore
/// tandem_testkit::on_each_backend!(quota_holds_across_nodes => a_quota_holds_across_the_nodes);
/// ```
#[macro_export]
macro_rules! on_each_backend {
    ($(#[$meta:meta])* $name:ident => $scenario:ident) => {
        $(#[$meta])*
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::SharedStorage::sqlite()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_s3() {
                if let Some(s) = $crate::SharedStorage::postgres_s3(stringify!($name)).await {
                    super::$scenario(s).await
                }
            }
        }
    };
}

/// Lower-case letters, digits and `_` only: part of a database name and a bucket prefix.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect()
}

/// A database of its own on the test server (`CREATE DATABASE` through the admin URL), dropped
/// (connections and all) on drop, even after a failed assertion.
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates database `name` on the server at `admin` (a `postgres://` URL whose role may
    /// create databases).
    pub async fn create(admin: &str, name: &str) -> TestDatabase {
        let mut conn = connect(admin).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create a test database (the role needs CREATEDB)");
        conn.close().await.ok();
        TestDatabase {
            admin: admin.to_owned(),
            url: with_database(admin, name),
            name: name.to_owned(),
        }
    }
}

impl TestDatabase {
    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop cannot await: a thread with its own runtime does it, and is waited for.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = connect(&admin).await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    PgConnectOptions::from_str(url)
        .expect("a postgres:// URL")
        .connect()
        .await
        .expect("connect to the test PostgreSQL server")
}

/// `url` with its database (the path) replaced by `name`; a query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_its_server_and_query() {
        assert_eq!(
            with_database("postgres://tandem@127.0.0.1:5432/tandem", "t1"),
            "postgres://tandem@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "t2"),
            "postgres://u@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t3"), "postgres://u@h/t3");
        assert_eq!(
            with_database("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(sanitize("Region-Nodes 1"), "region_nodes_1");
    }
}
