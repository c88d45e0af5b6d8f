//! What `jazari check-config` looks at beyond the file's syntax: that the
//! collector could start with it (the listen address, the store's folder, the
//! files it names).

use super::Config;
use std::path::Path;

/// What a check found: problems stop the collector; notes are worth knowing.
#[derive(Debug, Default)]
pub struct Checked {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl Config {
    /// Checks the machine against this configuration (files, folders, address).
    pub fn check_machine(&self) -> Checked {
        let mut c = Checked::default();
        match self.listen.parse::<std::net::SocketAddr>() {
            Err(_) => c.problems.push(format!(
                "listen = `{}` is not an address HOST:PORT: for example 0.0.0.0:9470 (all interfaces) or \
                 127.0.0.1:9470 (this machine only)",
                self.listen
            )),
            Ok(a) if a.ip().is_loopback() => c.notes.push(format!(
                "listen = `{}` accepts connections from this machine only: agents on other nodes need 0.0.0.0:{} \
                 or this host's address",
                self.listen,
                a.port()
            )),
            Ok(_) => {}
        }
        let store = &self.store;
        let url = store.to_str().filter(|s| super::store_url::is_url(s));
        if let Some(url) = url {
            let shown = super::store_url::redact(url);
            let tls = if url.contains("sslmode=require") {
                "over TLS (the server's certificate checked against PGSSLROOTCERT, else the system's roots)"
            } else {
                "in plain TCP (add ?sslmode=require for TLS)"
            };
            c.notes.push(format!(
                "store = {shown}: PostgreSQL, {tls}; the collector connects on start (10 s timeout) and creates \
                 or upgrades its tables"
            ));
            if shown != url {
                c.notes.push(
                    "the store URL carries a password: keep this file readable by the collector's user only, \
                     or leave it out of the URL and set PGPASSWORD in the collector's environment"
                        .into(),
                );
            }
        } else if store.exists() {
            if let Err(e) = std::fs::OpenOptions::new().read(true).open(store) {
                c.problems.push(format!("store = {}: cannot open it: {e}", store.display()));
            }
        } else {
            match store.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(dir) if !dir.is_dir() => match dir.ancestors().find(|a| a.exists()) {
                    Some(up) if up.is_dir() && writable(up) => c.notes.push(format!(
                        "store = {}: the folder {} does not exist yet; the collector makes it (mode 0750) on start",
                        store.display(),
                        dir.display()
                    )),
                    _ => c.problems.push(format!(
                        "store = {}: the folder {} does not exist and this user cannot make it (`mkdir -p {}`, \
                         owned by the user the collector runs as)",
                        store.display(),
                        dir.display(),
                        dir.display()
                    )),
                },
                Some(dir) if !writable(dir) => c.problems.push(format!(
                    "store = {}: the folder {} is not writable by this user, so the store cannot be created",
                    store.display(),
                    dir.display()
                )),
                _ => c.notes.push(format!("store = {}: created on first start", store.display())),
            }
        }
        let mut files: Vec<(&str, &Path)> = vec![];
        if let Some(t) = &self.tls {
            files.push(("tls.cert", &t.cert));
            files.push(("tls.key", &t.key));
            if let Some(ca) = &t.client_ca {
                files.push(("tls.client_ca", ca));
            }
        }
        if let Some(f) = &self.server.metrics_token_file {
            files.push(("server.metrics_token_file", f));
        }
        if let Some(f) = &self.scheduler.token_file {
            files.push(("scheduler.token_file", f));
        }
        for e in &self.alerts.email {
            if let Some(f) = &e.password_file {
                files.push(("alerts.email.password_file", f));
            }
        }
        for (key, f) in files {
            if let Err(e) = std::fs::File::open(f) {
                c.problems.push(format!("{key} = {}: cannot read it: {e}", f.display()));
            }
        }
        c
    }
}

/// Whether this process may create files in `dir`.
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".jazari-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn an_unmakeable_store_folder_a_bad_listen_address_and_a_missing_file_are_problems() {
        let dir = std::env::temp_dir().join(format!("jazari-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A store under a plain file: its folder can never be made, not even by root.
        let blocker = dir.join("file");
        std::fs::write(&blocker, "").unwrap();
        let text = format!(
            "listen = \"9470\"\nstore = \"{}/sub/x.sqlite\"\n[tls]\ncert = \"{}/none.pem\"\nkey = \"{}/none.key\"\n",
            blocker.display(),
            dir.display(),
            dir.display()
        );
        let mut cfg: Config = toml::from_str(&text).unwrap();
        let c = cfg.check_machine();
        assert_eq!(c.problems.len(), 4, "{:?}", c.problems);
        assert!(c.problems[0].contains("HOST:PORT") && c.problems[1].contains("cannot make it"), "{:?}", c.problems);
        assert!(c.problems[2].starts_with("tls.cert") && c.problems[3].starts_with("tls.key"), "{:?}", c.problems);
        cfg.tls = None;
        // A folder that does not exist yet but can be made is a note, not a problem.
        cfg.store = dir.join("new/x.sqlite");
        cfg.listen = "127.0.0.1:9470".into();
        let c = cfg.check_machine();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(c.notes.iter().any(|n| n.contains("this machine only")), "{:?}", c.notes);
        assert!(c.notes.iter().any(|n| n.contains("makes it")), "{:?}", c.notes);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
