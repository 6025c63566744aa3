//! Every member flow in real browsers, typing and pressing as a member does: headless
//! Chromium and Firefox ESR, each on a phone (390×844 CSS pixels at ratio 2; Chromium
//! adds touch) and on a desktop (1280×900). Every page is
//! photographed (`target/browser-screenshots/`) and checked by axe-core.

mod errors;
mod member;
mod passkey;
mod signup;

/// One test per browser and viewport for a flow `async fn(&TestDaemon, Engine, Viewport)`.
macro_rules! in_every_browser {
    ($flow:ident) => {
        mod $flow {
            use crate::util::TestDaemon;
            use crate::util::webdriver::{Engine, Viewport};
            fn run(engine: Engine, viewport: Viewport) {
                let daemon = TestDaemon::start();
                daemon.rt.block_on(super::$flow(&daemon, engine, viewport));
            }

            #[test]
            fn chromium_phone() {
                run(Engine::Chromium, Viewport::Phone);
            }

            #[test]
            fn chromium_desktop() {
                run(Engine::Chromium, Viewport::Desktop);
            }

            #[test]
            fn firefox_phone() {
                run(Engine::Firefox, Viewport::Phone);
            }

            #[test]
            fn firefox_desktop() {
                run(Engine::Firefox, Viewport::Desktop);
            }
        }
    };
}
pub(crate) use in_every_browser;

/// Runs the HTTP-client shortcuts (which block on the daemon's runtime) from a flow.
pub fn outside_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().unwrap())
}
