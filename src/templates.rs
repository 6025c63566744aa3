//! Every page and mail template, compiled into the binary. Autoescaping is on for
//! `.html` (pages) and off for `.txt` (mail bodies, which are plain text).

use tera::Tera;

use crate::error::Result;

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
];

pub const STYLESHEET: &str = include_str!("../templates/style.css");

pub fn load() -> Result<Tera> {
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATES.iter().copied())?;
    tera.autoescape_on(vec![".html"]);
    Ok(tera)
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_templates_parse() {
        super::load().unwrap();
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
