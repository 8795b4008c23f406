//! The configuration of tests that import through the service code (the
//! `dialcast` binary as a child, or the inbox pickup in-process): a fresh
//! database in the test's directory, the example scripts, the import
//! archive (and, if asked, the inbox) beside it, and a trunk that is never
//! dialled.

use std::path::{Path, PathBuf};

use dialcast_engine::config::Config;

/// Builds the configuration of an import test in `dir`.
pub struct ImportConfig {
    dir: PathBuf,
    organisation: String,
    inbox: bool,
}

impl ImportConfig {
    pub fn new(dir: &Path, organisation: &str) -> ImportConfig {
        ImportConfig {
            dir: dir.to_path_buf(),
            organisation: organisation.to_owned(),
            inbox: false,
        }
    }

    /// With the organisation's inbox at `<dir>/inbox`.
    pub fn with_inbox(mut self) -> ImportConfig {
        self.inbox = true;
        self
    }

    pub fn text(&self) -> String {
        let inbox = if self.inbox {
            format!("inbox_dir = \"{}\"\n", self.dir.join("inbox").display())
        } else {
            String::new()
        };
        format!(
            r#"
[storage]
database = "{db}"
[organisation]
name = "{organisation}"
default_country = "NL"
[scripts]
dir = "{scripts}"
[imports]
archive_dir = "{archive}"
{inbox}[[trunks]]
name = "t"
uri = "sip:127.0.0.1:9"
max_cps = 1
max_channels = 1
caller_id = "+31201234567"
[campaign]
trunk = "t"
max_attempts = 1
retry_delay_s = 60
ring_timeout_s = 30
max_call_s = 60
amd = false
"#,
            db = self.dir.join("dialcast.db").display(),
            organisation = self.organisation,
            scripts = dialcast_engine::demo::examples_dir().display(),
            archive = self.dir.join("archive").display(),
        )
    }

    /// Writes `<dir>/dialcast.toml` (for `dialcast --config`); returns its
    /// path.
    pub fn write(&self) -> PathBuf {
        std::fs::create_dir_all(&self.dir).expect("config dir");
        let path = self.dir.join("dialcast.toml");
        std::fs::write(&path, self.text()).expect("config");
        path
    }

    /// Parsed as the service parses its file.
    pub fn parse(&self) -> Config {
        Config::parse(&self.text(), "dialcast.toml", Vec::new()).expect("config")
    }
}
