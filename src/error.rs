//! The library's one error type. `web::respond` turns it into a status and a Japanese
//! page; the CLI prints it through anyhow.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database is from a newer karamail (schema version {found}, this build knows {known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database upgrade failed: {0}")]
    Migration(String),
    #[error("configuration: {0}")]
    Config(String),
    /// A backup that does not check out, or a database file in use.
    #[error("{0}")]
    Backup(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("template: {0}")]
    Template(#[from] tera::Error),
    #[error("mail: {0}")]
    Mail(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// No such page, or a page the visitor may not see (we do not say which).
    #[error("not found")]
    NotFound,
    /// A form arrived without a valid CSRF token or from another origin.
    #[error("form token missing or wrong")]
    Csrf,
    /// The request itself is malformed (bad form encoding, too large a body).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Every place for password hashing is taken: try again in a moment (503).
    #[error("busy: every password-hashing place is taken")]
    Busy,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}
