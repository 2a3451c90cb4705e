//! cli::spec: the table of sub-commands and the flags each accepts, and the
//! help text made from it. The parser reads flags only through
//! `super::args::Args`, which refuses a name the table lacks, so the help
//! cannot forget a flag the parser accepts.
//!
//! It must never do I/O or build a `Config`: it only knows names and text.

pub use super::args::{unknown_command, Args};
use super::spec_server::{
    S3_BUCKET, S3_CREDENTIALS_FILE, S3_ENDPOINT, S3_PREFIX, S3_REGION, SERVER_FLAGS,
};
use std::fmt;

/// A flag of a sub-command.
#[derive(Debug)]
pub struct Flag {
    pub name: &'static str,
    /// The placeholder of its value (`DIR`), or `None` for a switch.
    pub value: Option<&'static str>,
    /// May be given more than once.
    pub repeat: bool,
    pub help: &'static str,
}

/// A sub-command: its name, the positional part of its usage, a one-line
/// summary, its flags and a longer explanation.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub operands: &'static str,
    pub summary: &'static str,
    pub flags: &'static [Flag],
    pub about: &'static str,
}

/// An error in the command line: printed as is, with no code in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

pub(super) const fn switch(name: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: None,
        repeat: false,
        help,
    }
}

pub(super) const fn valued(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeat: false,
        help,
    }
}

pub(super) const fn repeated(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeat: true,
        help,
    }
}

pub(super) const DATA: Flag = valued(
    "--data",
    "DIR",
    "the data folder (default $REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY or ./soute-data)",
);
const JSON: Flag = switch("--json", "print the report as JSON");
const GRACE: Flag = valued(
    "--grace",
    "SECS",
    "keep blobs and untagged manifests younger than this (default 3600)",
);
const LINK_GRACE: Flag = valued(
    "--link-grace",
    "SECS",
    "keep repository links younger than this (default 3600)",
);
const DELETE_UNTAGGED: Flag = switch("--delete-untagged", "also remove manifests no tag reaches");

/// Every sub-command, in the order the general help lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "serve",
        operands: "",
        summary: "run the registry (the only command that creates a data folder)",
        flags: SERVER_FLAGS,
        about: "Serves the OCI distribution API on port 5000 of every interface, with TLS from
its own CA (made in DIR/tls/ on first start), until Ctrl-C or SIGTERM. It checks
that it can listen before it creates anything.",
    },
    Spec {
        name: "user",
        operands: "add|passwd|del|list [NAME] | admin NAME yes|no | open",
        summary:
            "add, change, delete or list users (password from a prompt or stdin); open a registry",
        flags: &[
            DATA,
            switch("--admin", "with add: the new user is an administrator"),
        ],
        about: "Works on an existing data folder, also while `soute serve` runs on it
(`add` also on an empty folder you made, before the first `serve`).
The password is read from the terminal (twice, without echo) or one line of stdin.
Administrators may do everything; other users what `soute access` grants them.
The first user of a registry without an administrator becomes one. `list` shows
the admin flag and groups of every user.
A registry that has had users stays closed after its last user is deleted, until
`soute user open` lets anyone in again (refused while users exist).",
    },
    Spec {
        name: "group",
        operands: "add|del|list [GROUP] | member add|del GROUP USER",
        summary: "groups of users, to grant access to several at once",
        flags: &[DATA],
        about: "Deleting a group deletes its memberships and its rules. Changes apply to the
next request of a running server.",
    },
    Spec {
        name: "access",
        operands: "grant WHO PATTERN ACTIONS | revoke WHO PATTERN | list | check USER REPO ACTION",
        summary: "who may pull, push, delete or administer which repositories",
        flags: &[
            DATA,
            JSON,
            switch(
                "--anonymous-pull",
                "with check: as a server started with --anonymous-pull",
            ),
        ],
        about: "WHO is a user NAME (user:NAME if the name is anonymous or authenticated),
group:GROUP, anonymous (every caller) or authenticated (every signed-in caller).
PATTERN is a glob over repository names: * within one path segment, ** across
segments (alice/*, team/**, public/**, **). ACTIONS: pull, push, delete, admin,
metrics (read /metrics; admin and metrics only on **), comma-separated, or all, or none (takes rights away from less specific rules).
The most specific rule wins (more literal characters, then fewer **, then fewer *,
then user > group > authenticated > anonymous); no rule means no access;
administrators may do everything. `check` prints allow or deny and the rule that
decided (USER may be anonymous). Changes apply to the next request.",
    },
    Spec {
        name: "token",
        operands: "create NAME --user USER | list | revoke NAME",
        summary: "API tokens: passwords for scripts and CI, limited by scopes",
        flags: &[
            DATA,
            valued("--user", "USER", "with create: the user the token acts for"),
            repeated(
                "--scope",
                "PATTERN:ACTIONS",
                "with create: what the token may do (default **:all, its user's rights; metrics: only /metrics)",
            ),
            valued(
                "--expires",
                "90d",
                "with create: lifetime in d, h, m or s (default: never)",
            ),
            JSON,
        ],
        about: "`create` prints the secret once (soute keeps only its sha256). Use it as the
password: docker login -u USER --password-stdin. A token may do what its user may
do and one of its scopes allows. `revoke` makes it unusable at once.",
    },
    super::audit::SPEC,
    super::webhook::SPEC,
    super::retention::SPEC,
    super::tag::SPEC,
    super::quota::SPEC,
    Spec {
        name: "upstream",
        operands: "add NAME URL | list | del NAME | sync NAME/REPO:TAG",
        summary: "registries to pull through: NAME/REPO is served from URL and cached",
        flags: &[
            DATA,
            valued(
                "--username",
                "U",
                "with add: the user soute signs in to the upstream as",
            ),
            switch(
                "--password-stdin",
                "with add: read that user's password from stdin",
            ),
            valued(
                "--ca",
                "FILE",
                "with add: trust these PEM certificates (default: the system's roots)",
            ),
            valued(
                "--tag-ttl",
                "SECS",
                "with add: check a cached tag upstream after this long (default 300)",
            ),
            switch(
                "--mirror",
                "with add: also serve names this registry lacks (dockerd registry-mirrors)",
            ),
            valued(
                "--max-bytes",
                "SIZE",
                "with add: gc evicts least recently pulled images beyond this (10GiB)",
            ),
            valued(
                "--evict-after",
                "SECS",
                "with add: gc evicts images not pulled for this long (SECS, or 12h, 7d)",
            ),
            switch("--purge", "with del: also evict everything it cached, now"),
            repeated(
                "--platform",
                "OS/ARCH",
                "with sync: only these platforms of an index (default this machine's; all)",
            ),
            valued(
                "--max-rate",
                "BYTES_PER_S",
                "with add: download from it at most this fast, all pulls together",
            ),
            JSON,
        ],
        about: "NAME is the namespace clients pull through, one path segment like docker.io:
`docker pull HOST:5000/docker.io/library/busybox:1.36` (or docker.io/busybox) is
fetched from URL once, verified, stored, then served from the data folder. Tags
are re-checked with a HEAD after --tag-ttl; when the upstream is down, what is
cached is still served. Pushes into NAME/ are refused. With --mirror (one upstream
at most) a name this registry does not have, like library/nginx, is served from that
upstream, as dockerd's registry-mirrors asks; containerd's ?ns=NAME picks NAME the same
way. Local repositories always win. Who may pull through is
decided by `soute access` rules (e.g. `access grant authenticated 'docker.io/**' pull`).
The password is kept in soute.db (0600) and never shown. Changes apply at once.
Space: cached images count apart from private ones (`soute du`); gc (also the one
`serve` runs every --gc-interval) evicts an upstream's images not pulled for
--evict-after, then least recently pulled first while it holds over --max-bytes.
Private images are never evicted, even when they share layers with cached ones.
`del NAME` stops fetching; what NAME cached stays, read-only, until gc evicts it
(7 days after its last pull) or `del NAME --purge`; adding NAME again adopts it.
`sync NAME/REPO:TAG` fetches an image now (before going offline): an index's
manifest and, by default, only the platform of this machine (as `docker pull`
does); --platform picks others (repeat it), --platform all every one. It works
while `soute serve` runs on the same folder.",
    },
    Spec {
        name: "gc",
        operands: "",
        summary: "remove what nothing needs",
        flags: &[
            DATA,
            switch("--dry-run", "list what would go and why the rest stays"),
            DELETE_UNTAGGED,
            GRACE,
            LINK_GRACE,
            valued(
                "--upload-ttl",
                "SECS",
                "expire upload sessions idle this long (default 86400)",
            ),
            JSON,
        ],
        about: "Removes blobs no manifest references and no repository links, links to blobs
nothing in their repository references, expired upload sessions and, with
--delete-untagged, manifests no tag reaches. It also evicts cached images of
upstreams (--evict-after, --max-bytes of `soute upstream add`; never private images);
--dry-run says which and why. `serve` runs it every --gc-interval.
Retention rules (`soute retention`) are applied first; --dry-run gives each tag's verdict.",
    },
    Spec {
        name: "backup",
        operands: "DEST",
        summary: "write a consistent copy of the registry, also while it serves",
        flags: &[
            DATA,
            switch("--with-blobs", "with an S3 store: also copy the objects into DEST/blobs/"),
        ],
        about: "DEST (relative to the current folder or absolute; outside the data folder,
absent or empty) gets a database snapshot, the blobs it references (hard links on
the same filesystem), tls/ and SHA256SUMS; `soute serve --data DEST` serves it.
With an S3 store, DEST gets the snapshot, tls/ and OBJECTS (every object the
snapshot needs, with its size; the objects stay the store's business), and
`soute serve --data DEST --blob-store s3 ...` serves it from the same bucket;
--with-blobs copies the objects instead, making DEST a local registry.",
    },
    Spec {
        name: "verify",
        operands: "",
        summary: "re-hash every blob and check every reference",
        flags: &[
            DATA,
            switch("--repair", "remove orphan files (never referenced data)"),
            switch("--deep", "with an S3 store: also re-hash every object (default: names and sizes)"),
            JSON,
        ],
        about: "Reports damaged or missing blobs, broken references and orphan files.
Blobs of the data folder are always re-hashed; objects of an S3 store are checked
against the bucket's listing (present, right size), and re-hashed with --deep.",
    },
    Spec {
        name: "blobs",
        operands: "migrate --to local|s3",
        summary: "move the blobs to another store (also while serving), verified, resumable",
        flags: &[
            DATA,
            valued("--to", "local|s3", "the store to copy every blob into"),
            S3_ENDPOINT,
            S3_BUCKET,
            S3_PREFIX,
            S3_REGION,
            S3_CREDENTIALS_FILE,
            JSON,
        ],
        about: "Copies every blob the database knows into the target (--to s3 with the same
--s3-* flags and environment as serve; --to local: the data folder's blobs/),
re-hashing each on the way; what the target already holds is skipped, so a rerun
resumes. While `soute serve` runs, once every blob is copied serve switches to the
target live (pushes go there; blobs not copied yet are read from the old store),
then this command copies what came in meanwhile and records the new store for
gc/verify/du/backup; every image stays pullable throughout. With serve stopped it
copies and records. Either way it prints the --blob-store flags serve's next start
needs. The old store is left as it was.",
    },
    Spec {
        name: "du",
        operands: "[REPO]",
        summary: "space used: logical, unique, shared and reclaimable bytes",
        flags: &[
            DATA,
            valued(
                "--tag",
                "TAG",
                "with REPO: what deleting this tag would free",
            ),
            GRACE,
            LINK_GRACE,
            DELETE_UNTAGGED,
            JSON,
        ],
        about: "With REPO, also what deleting the repository (or --tag TAG) would free.
Totals split private bytes (what private repositories use, shared layers included),
bytes cached from upstreams, and unreferenced ones; each upstream's cache is listed.",
    },
    Spec {
        name: "check-config",
        operands: "",
        summary: "print the resolved configuration (same flags as serve)",
        flags: SERVER_FLAGS,
        about: "Prints what `soute serve` with the same flags and environment would use,
including the names its certificate would cover. Opens nothing.",
    },
    Spec {
        name: "version",
        operands: "",
        summary: "print the version",
        flags: &[],
        about: "",
    },
    Spec {
        name: "help",
        operands: "[COMMAND]",
        summary: "this help, or a command's",
        flags: &[],
        about: "",
    },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

/// The general help: the commands and where the data lives.
pub fn general_help() -> String {
    let mut out = String::from(
        "soute: a private Docker/OCI registry in one binary and one data folder\n\nUSAGE:\n    soute COMMAND [FLAGS]\n\nCOMMANDS:\n",
    );
    for s in COMMANDS {
        let head = format!("{} {}", s.name, s.operands);
        out.push_str(&format!("    {:<38} {}\n", head.trim_end(), s.summary));
    }
    out.push_str(
        "
`soute help COMMAND` (or `soute COMMAND --help`) lists a command's flags.
user, audit, gc, backup, verify and du work while `soute serve` runs on the same folder.
The data folder defaults to ./soute-data (or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY).
Environment (distribution's names): REGISTRY_HTTP_ADDR, REGISTRY_HTTP_TLS_CERTIFICATE,
REGISTRY_HTTP_TLS_KEY, REGISTRY_LOG_LEVEL, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY,
REGISTRY_STORAGE_DELETE_ENABLED, REGISTRY_AUTH_HTPASSWD_REALM, REGISTRY_AUTH_HTPASSWD_PATH,
REGISTRY_PROXY_REMOTEURL (_USERNAME, _PASSWORD, _TTL: one --mirror upstream);
soute's own: SOUTE_MAX_BLOB_SIZE, SOUTE_DISK_RESERVE. Flags override the environment.
",
    );
    out
}

/// A command's help: usage, every flag it accepts, and what it does.
pub fn command_help(s: &Spec) -> String {
    let mut out = format!(
        "soute {}: {}\n\nUSAGE:\n    soute {}",
        s.name, s.summary, s.name
    );
    if !s.operands.is_empty() {
        out.push(' ');
        out.push_str(s.operands);
    }
    out.push_str(if s.flags.is_empty() {
        "\n"
    } else {
        " [FLAGS]\n"
    });
    out.push_str("\nFLAGS:\n");
    for f in s.flags {
        let mut head = f.name.to_string();
        if let Some(v) = f.value {
            head.push(' ');
            head.push_str(v);
        }
        if f.repeat {
            head.push_str("...");
        }
        out.push_str(&format!("    {head:<26} {}\n", f.help));
    }
    out.push_str(&format!("    {:<26} {}\n", "-h, --help", "print this help"));
    if !s.about.is_empty() {
        out.push('\n');
        out.push_str(s.about);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::args::{closest, edit_distance};
    use super::*;

    #[test]
    fn distance_and_suggestions() {
        assert_eq!(edit_distance("--hostnme", "--hostname"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("--hostnme", SERVER_FLAGS.iter().map(|f| f.name)),
            Some("--hostname")
        );
        assert_eq!(
            closest("--zzzzzzzzzz", SERVER_FLAGS.iter().map(|f| f.name)),
            None
        );
        assert_eq!(
            closest("serv", COMMANDS.iter().map(|s| s.name)),
            Some("serve")
        );
    }

    #[test]
    fn every_flag_is_in_its_command_help() {
        for s in COMMANDS {
            let help = command_help(s);
            for f in s.flags {
                assert!(help.contains(f.name), "{} help lacks {}", s.name, f.name);
            }
            assert!(general_help().contains(s.name));
        }
    }
}
