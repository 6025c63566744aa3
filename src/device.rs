//! Who is at the other end of a login, as a member would recognise it: the browser and
//! the device («Safari（iPhone）»), read from the `User-Agent`, and the client address.
//! Only this short description is kept (login history, 「ログインが行われました」), never
//! the header itself.

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    /// `describe` of its `User-Agent`.
    pub device: String,
}

impl Client {
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
}

/// What a member calls a browser that sent no usable `User-Agent`.
pub const UNKNOWN: &str = "不明なブラウザ";

/// «Browser（device）» from a `User-Agent` header, e.g. «Chrome（Windows）»,
/// «Safari（iPhone）», «LINE（Android）»; `UNKNOWN` when it names nothing we know.
pub fn describe(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return UNKNOWN.to_string();
    };
    match (browser(ua), platform(ua)) {
        (Some(browser), Some(platform)) => format!("{browser}（{platform}）"),
        (Some(browser), None) => browser.to_string(),
        (None, Some(platform)) => format!("{UNKNOWN}（{platform}）"),
        (None, None) => UNKNOWN.to_string(),
    }
}

/// The browser, most specific first: Edge, Opera, Samsung Internet and the in-app
/// browsers all say «Chrome» or «Safari» too.
fn browser(ua: &str) -> Option<&'static str> {
    const BROWSERS: &[(&str, &str)] = &[
        (" Line/", "LINE"),
        ("Edg", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("YaBrowser/", "Yandex"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ];
    BROWSERS
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map(|(_, name)| *name)
}

fn platform(ua: &str) -> Option<&'static str> {
    const PLATFORMS: &[(&str, &str)] = &[
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Macintosh", "Mac"),
        ("Linux", "Linux"),
    ];
    PLATFORMS
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_are_named_as_members_know_them() {
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari（iPhone）",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge（Windows）",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SO-51D) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome（Android）",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/21A329 Safari Line/14.1.0",
                "LINE（iPhone）",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox（Linux）",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
                "Safari（Mac）",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 Mobile/15E148 Safari/604.1",
                "Chrome（iPhone）",
            ),
        ];
        for (ua, expected) in cases {
            assert_eq!(describe(Some(ua)), expected, "{ua}");
        }
    }

    #[test]
    fn nothing_known_is_said_plainly() {
        assert_eq!(describe(None), UNKNOWN);
        assert_eq!(describe(Some("  ")), UNKNOWN);
        assert_eq!(describe(Some("curl/8.5.0")), UNKNOWN);
        assert_eq!(
            describe(Some("Dalvik/2.1.0 (Linux; U; Android 14)")),
            "不明なブラウザ（Android）"
        );
    }
}
