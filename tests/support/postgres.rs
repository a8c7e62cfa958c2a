//! PostgreSQL for the tests: the admin URL from `MADOGUCHI_TEST_PG` (a
//! test says why it skips without it, and fails under CI), a URL with
//! another database, and a scratch database per test run.

/// The URL of `MADOGUCHI_TEST_PG`; `None` (after saying why) when it is
/// unset outside CI. Under CI an unset variable fails the test, so CI
/// cannot skip PostgreSQL silently.
pub fn admin_url(test: &str, what: &str) -> Option<String> {
    if let Some(url) = std::env::var("MADOGUCHI_TEST_PG")
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return Some(url);
    }
    let in_ci = std::env::var("CI")
        .map(|ci| !ci.is_empty() && ci != "false" && ci != "0")
        .unwrap_or(false);
    assert!(
        !in_ci,
        "{test}: MADOGUCHI_TEST_PG is unset but CI is set: CI must run the PostgreSQL {what} \
         tests (.ci/run starts a throwaway PostgreSQL and sets MADOGUCHI_TEST_PG)"
    );
    // Straight to stderr, past the test harness's capture, so a plain
    // `cargo test` shows it.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: SKIPPED (not run against PostgreSQL): MADOGUCHI_TEST_PG is unset. Set it to \
         a URL of a role that may create databases, e.g. \
         MADOGUCHI_TEST_PG=postgres://postgres@127.0.0.1:54329/postgres (.ci/run does)."
    );
    None
}

/// `url` with its database replaced by `database` (query kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &base[..path_start])
}

/// A database of its own for one test run, dropped at the end (also when
/// the test fails), so runs never collide.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create(admin_url: &str, test: &str) -> ScratchDatabase {
        use sqlx::Connection;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let name = format!("madoguchi_{test}_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to MADOGUCHI_TEST_PG");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create a scratch database (the role of MADOGUCHI_TEST_PG needs CREATEDB)");
        admin.close().await.expect("close");
        ScratchDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }

    pub async fn drop(self) {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("connect to MADOGUCHI_TEST_PG");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .expect("drop the scratch database");
        admin.close().await.expect("close");
    }
}
