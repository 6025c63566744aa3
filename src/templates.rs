//! Every page and mail template, compiled into the binary. Autoescaping is on for
//! `.html` (pages) and off for `.txt` (mail bodies, which are plain text).

use tera::Tera;

use crate::error::Result;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "signup_request.html",
        include_str!("../templates/signup_request.html"),
    ),
    (
        "signup_sent.html",
        include_str!("../templates/signup_sent.html"),
    ),
    (
        "signup_verify.html",
        include_str!("../templates/signup_verify.html"),
    ),
    (
        "signup_profile.html",
        include_str!("../templates/signup_profile.html"),
    ),
    (
        "signup_done.html",
        include_str!("../templates/signup_done.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    (
        "login_key.html",
        include_str!("../templates/login_key.html"),
    ),
    (
        "member_nav.html",
        include_str!("../templates/member_nav.html"),
    ),
    ("home.html", include_str!("../templates/home.html")),
    ("record.html", include_str!("../templates/record.html")),
    ("profile.html", include_str!("../templates/profile.html")),
    (
        "email_confirm.html",
        include_str!("../templates/email_confirm.html"),
    ),
    (
        "reset_request.html",
        include_str!("../templates/reset_request.html"),
    ),
    (
        "reset_login.html",
        include_str!("../templates/reset_login.html"),
    ),
    (
        "reset_password.html",
        include_str!("../templates/reset_password.html"),
    ),
    (
        "reset_done.html",
        include_str!("../templates/reset_done.html"),
    ),
    (
        "mail/signup_link.txt",
        include_str!("../templates/mail/signup_link.txt"),
    ),
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
}
