//! Every page and mail template, compiled into the binary. Autoescaping is on for
//! `.html` (pages) and off for `.txt` (mail bodies, which are plain text).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tera::Tera;

use crate::error::{Error, Result};

/// `("name", contents of templates/name)`.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "error.html",
    "member_nav.html",
    "error_summary.html",
    "mail_domain.html",
    // Sign-up (Procedures A and B).
    "signup_request.html",
    "signup_sent.html",
    "signup_verify.html",
    "signup_profile.html",
    "signup_done.html",
    // Login and the member's pages.
    "login.html",
    "login_key.html",
    "home.html",
    "record.html",
    "profile.html",
    "email_confirm.html",
    "email_remove.html",
    // パスワード再発行.
    "reset_request.html",
    "reset_login.html",
    "reset_password.html",
    "reset_done.html",
    // Mails.
    "mail/signup_link.txt",
    "mail/login_key.txt",
    "mail/reset.txt",
    "mail/email_verify.txt",
    "mail/profile_changed.txt",
    "mail/login_notice.txt",
    "mail/news.txt",
    "mail/test.txt",
    // The printed postcard's layout (`karamail postcards print`).
    "postcard.txt",
];

/// The names of the mail templates (`mail/…`).
pub fn mail_templates() -> impl Iterator<Item = &'static str> {
    TEMPLATES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.starts_with("mail/"))
}

const STYLESHEET: &str = include_str!("../templates/style.css");

/// The templates in use: compiled in, each replaceable by a file of the same name in
/// `[site] templates_dir` (and `style.css` too). `reload` (on SIGHUP) re-reads the folder;
/// a broken folder leaves the running templates as they were.
pub struct Templates {
    dir: Option<PathBuf>,
    current: RwLock<Arc<Loaded>>,
}

pub struct Loaded {
    pub tera: Tera,
    pub stylesheet: String,
    /// Pages rendered with these templates that only a CSRF token tells apart.
    pub token_pages: TokenPages,
}

/// Pages that are the same for every visitor but for the CSRF token in their forms
/// (the login page): each is rendered once and kept in pieces around its token, and
/// every visitor's copy is the pieces joined with their own token. A page learns its
/// pieces from two renders with two random tokens: only when putting the second token
/// between the first render's pieces gives the second render exactly (the template
/// prints the token as it is, and nothing else in it changes) is it kept; otherwise it
/// is rendered for every visitor, as any other page.
#[derive(Default)]
pub struct TokenPages {
    /// By everything else the page is made from (`AppState::token_page`).
    learned: Mutex<Learned>,
}

/// By key, a page's pieces around its token, or `None` for a page rendered every time.
type Learned = HashMap<String, Option<Arc<[String]>>>;

/// The most pages kept (the login page has four variants); past it, pages are rendered.
const TOKEN_PAGES_KEPT: usize = 16;

impl TokenPages {
    /// The page `key` with `token` in it; `render` renders it with a given token. Only a
    /// token as karamail makes them (64 hex digits, which no escaping changes) is put
    /// between pieces: the pieces were proven for such tokens only.
    pub fn page(
        &self,
        key: &str,
        token: &str,
        render: impl Fn(&str) -> Result<String>,
    ) -> Result<String> {
        let is_token = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
        let known = self.lock().get(key).cloned();
        let pieces = match known {
            Some(pieces) => pieces,
            None if is_token && self.lock().len() < TOKEN_PAGES_KEPT => {
                let pieces = learn(&render)?;
                self.lock().insert(key.to_string(), pieces.clone());
                pieces
            }
            None => None,
        };
        match pieces {
            Some(pieces) if is_token => Ok(pieces.join(token)),
            _ => render(token),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pieces of a page around its token, if the page is the same but for the token.
fn learn(render: impl Fn(&str) -> Result<String>) -> Result<Option<Arc<[String]>>> {
    let (first, second) = (crate::secrets::new_token(), crate::secrets::new_token());
    let (one, other) = (render(&first)?, render(&second)?);
    let pieces: Vec<String> = one.split(first.as_str()).map(str::to_string).collect();
    let same_but_token = pieces.len() > 1 && pieces.join(&second) == other;
    Ok(same_but_token.then(|| pieces.into()))
}

impl Templates {
    pub fn new(dir: Option<&Path>) -> Result<Templates> {
        let dir = dir.map(Path::to_path_buf);
        let loaded = load(dir.as_deref())?;
        Ok(Templates {
            dir,
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    pub fn get(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn reload(&self) -> Result<()> {
        let loaded = load(self.dir.as_deref())?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(())
    }
}

/// Every template, the folder's version where it has one; names the file that fails.
pub fn load(dir: Option<&Path>) -> Result<Loaded> {
    let mut sources: Vec<(&str, String)> = Vec::new();
    for (name, compiled) in TEMPLATES {
        sources.push((
            name,
            read_override(dir, name)?.unwrap_or_else(|| compiled.to_string()),
        ));
    }
    let mut tera = Tera::default();
    tera.add_raw_templates(sources.iter().map(|(name, text)| (*name, text.as_str())))
        .map_err(|e| {
            Error::Config(format!(
                "templates{}: {}",
                dir.map(|d| format!(" in {}", d.display()))
                    .unwrap_or_default(),
                describe(&e)
            ))
        })?;
    tera.autoescape_on(vec![".html"]);
    tera.register_filter("japanese_date", japanese_date);
    let stylesheet = read_override(dir, "style.css")?.unwrap_or_else(|| STYLESHEET.to_string());
    Ok(Loaded {
        tera,
        stylesheet,
        token_pages: TokenPages::default(),
    })
}

/// `2026-11-22` → `2026年11月22日`, as the mails write dates; anything else unchanged.
fn japanese_date(
    value: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = value.as_str().unwrap_or_default();
    Ok(tera::Value::String(crate::jst::japanese_date(text)))
}

fn read_override(dir: Option<&Path>, name: &str) -> Result<Option<String>> {
    let Some(path) = dir.map(|d| d.join(name)) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!(
            "cannot read template {}: {e}",
            path.display()
        ))),
    }
}

/// tera's error with its causes (the first line alone rarely names the mistake).
pub fn describe(error: &tera::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_templates_parse() {
        super::load(None).unwrap();
    }

    #[test]
    fn a_folder_overrides_by_name_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signup_done.html"), "{% extends \"base.html\" %}{% block content %}登録しました（組合版）{% endblock content %}").unwrap();
        let loaded = super::load(Some(dir.path())).unwrap();
        let mut context = tera::Context::new();
        context.insert("site", &crate::config::SiteConfig::default());
        context.insert("portal_url", "http://x");
        assert!(
            loaded
                .tera
                .render("signup_done.html", &context)
                .unwrap()
                .contains("組合版")
        );
        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        let error = super::load(Some(dir.path())).err().unwrap().to_string();
        assert!(error.contains("login.html"), "{error}");
    }

    #[test]
    fn a_page_kept_in_pieces_is_the_page_rendered_anew() {
        let pages = super::TokenPages::default();
        let renders = std::cell::Cell::new(0);
        let page = |token: &str| {
            renders.set(renders.get() + 1);
            Ok(format!(
                "<form><input value=\"{token}\"></form><a href=\"?t={token}\">"
            ))
        };
        let tokens: Vec<String> = (0..3).map(|_| crate::secrets::new_token()).collect();
        for token in &tokens {
            assert_eq!(
                pages.page("form", token, page).unwrap(),
                page(token).unwrap()
            );
        }
        // Two renders to learn the pieces, then one per check above and none per page.
        assert_eq!(renders.get(), 2 + 3);
        // Anything but a token of ours is rendered, never put between pieces unescaped.
        let odd = "\"><script>";
        assert_eq!(pages.page("form", odd, page).unwrap(), page(odd).unwrap());
        assert_eq!(renders.get(), 2 + 3 + 2);
        // A page that changes the token, or changes by itself, is rendered each time.
        let token = &tokens[0];
        let shortened = |token: &str| Ok(format!("<b>{}</b>", &token[..4]));
        let short = pages.page("short", token, shortened).unwrap();
        assert_eq!(short, format!("<b>{}</b>", &token[..4]));
        let counter = std::cell::Cell::new(0);
        let changing = |token: &str| {
            counter.set(counter.get() + 1);
            Ok(format!("{token} {}", counter.get()))
        };
        assert_eq!(
            pages.page("changing", token, changing).unwrap(),
            format!("{token} 3")
        );
        assert_eq!(
            pages.page("changing", token, changing).unwrap(),
            format!("{token} 4")
        );
        // However many kinds of page are asked for, a few are kept.
        for kind in 0..100 {
            pages.page(&format!("kind {kind}"), token, page).unwrap();
        }
        assert_eq!(pages.lock().len(), super::TOKEN_PAGES_KEPT);
    }

    #[test]
    fn every_template_file_is_compiled_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = Vec::new();
        for sub in ["", "mail"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".html") || name.ends_with(".txt") {
                    on_disk.push(if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    });
                }
            }
        }
        for name in on_disk {
            assert!(
                super::TEMPLATES.iter().any(|(n, _)| *n == name),
                "{name} is not in TEMPLATES"
            );
        }
    }
}
