//! Store URLs: which backend a URL names, its options, and how it is shown
//! (never with its password).

use super::{sqlite, Durability, PgStore, SqliteStore, Store, StoreError};

/// Opens the store a URL names: `sqlite://PATH` or `memory`.
pub fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PgStore::open(url)?));
    }
    Ok(std::sync::Arc::new(open_sqlite(url)?))
}

fn open_sqlite(url: &str) -> Result<SqliteStore, StoreError> {
    if url == "memory" || url == "sqlite::memory:" {
        return SqliteStore::open_in_memory();
    }
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Err(StoreError::Url {
            url: without_password(url),
            message: "use sqlite://PATH (e.g. sqlite://.scenarist/scenarist.db), postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME] or memory".to_owned(),
        });
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(StoreError::Url {
            url: url.to_owned(),
            message: "the path is empty".to_owned(),
        });
    }
    let mut sync = Durability::Normal;
    let mut max_log = sqlite::DEFAULT_MAX_LOG;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sync", "normal")) => sync = Durability::Normal,
            Some(("sync", "full")) => sync = Durability::Full,
            Some(("max_log", size)) => {
                max_log = sqlite::parse_size(size)
                    .filter(|s| *s >= sqlite::MIN_MAX_LOG)
                    .ok_or_else(|| StoreError::Url {
                        url: url.to_owned(),
                        message: format!(
                            "`max_log={size}` is not a size of at least 256KB (e.g. max_log=64MB)"
                        ),
                    })?;
            }
            _ => {
                return Err(StoreError::Url {
                    url: url.to_owned(),
                    message: format!(
                        "unknown option `{pair}` (known: sync=normal, sync=full, max_log=SIZE)"
                    ),
                })
            }
        }
    }
    SqliteStore::open_with(std::path::Path::new(path), sync, max_log)
}

/// A store URL fit to show: `scheme://user:PASSWORD@host` becomes
/// `scheme://user:***@host`, so errors and logs never carry the password.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let masked = if user_info.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_in_store_urls_are_masked() {
        assert_eq!(
            without_password("postgres://ops:s3cr%40t@db.internal:5432/scenarist?schema=a"),
            "postgres://ops:***@db.internal:5432/scenarist?schema=a"
        );
        assert_eq!(
            without_password("postgres://ops@db/x"),
            "postgres://ops@db/x"
        );
        assert_eq!(without_password("sqlite://a/b.db"), "sqlite://a/b.db");
        assert_eq!(without_password("memory"), "memory");
        let refused = super::open("mysql://u:hunter22@h/db")
            .err()
            .unwrap()
            .to_string();
        assert!(!refused.contains("hunter22"), "{refused}");
    }
}
