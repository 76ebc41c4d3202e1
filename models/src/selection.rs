//! Which browser runs a model, following the original design's table, checked against what
//! each browser can really do. The table says what is *preferred*; the measured capabilities
//! decide what is *chosen*, and the reason records both.

/// The order substitutes are tried in when the preferred browser cannot serve: branded
/// Chromium browsers first (what users run), then Debian's Chromium, then the headless-shell
/// build, then Firefox (only the table's audio-on-WebGPU rule prefers it).
const SUBSTITUTES: [&str; 5] = ["chrome", "edge", "chromium", "headless-shell", "firefox"];

/// What the original design prefers for a model type and platform, and the rule that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    pub browser: &'static str,
    pub rule: &'static str,
}

/// The seed's table, in its order (first match wins).
pub fn preferred(model_type: &str, platform: &str) -> Preference {
    let family = family(model_type);
    let (browser, rule) = match (family, platform) {
        ("audio", "webgpu") => ("firefox", "audio on webgpu prefers firefox"),
        ("text", "webnn") => ("edge", "text on webnn prefers edge"),
        ("vision", "webgpu") => ("chrome", "vision on webgpu prefers chrome"),
        ("multimodal", _) => ("chrome", "multimodal prefers chrome"),
        (_, "webnn") => ("edge", "webnn prefers edge"),
        (_, "webgpu") => ("chrome", "webgpu prefers chrome"),
        // The table names no browser for wasm; every Chromium runs it alike.
        _ => ("chrome", "wasm has no preference; chrome first"),
    };
    Preference { browser, rule }
}

/// Model types grouped as the table groups them: every text type counts as text.
fn family(model_type: &str) -> &str {
    match model_type {
        "text" | "text_embedding" | "text2text" | "text_generation" => "text",
        // Whisper is the seed's example of an audio model.
        "speech_to_text" => "audio",
        other => other,
    }
}

/// What is known of one browser when choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Installed, driven, and its measured capabilities include the platform.
    HasPlatform,
    /// Installed and driven, but the platform is not available; the browser's own error.
    LacksPlatform(String),
    /// Not installed; how to point webaccel at one (where it looked is `detect()`'s to show).
    NotInstalled(String),
    /// Installed, but it failed to start.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The browser chosen, or None when no browser has the platform.
    pub browser: Option<String>,
    /// Why: the rule, and each browser passed over with its reason.
    pub reason: String,
}

/// Walks the preferred browser, the substitutes, then `remote` (Selenium Grid slots,
/// `grid:<name>`, after every local browser: a remote machine is chosen when this one cannot
/// serve), asking `availability` about each (it may launch the browser to measure it), and stops
/// at the first that has the platform.
pub fn choose(
    model_type: &str,
    platform: &str,
    remote: &[String],
    mut availability: impl FnMut(&str) -> Availability,
) -> Selection {
    let pref = preferred(model_type, platform);
    let mut passed_over = Vec::new();
    let order = std::iter::once(pref.browser)
        .chain(SUBSTITUTES.into_iter().filter(|b| *b != pref.browser))
        .map(str::to_string)
        .chain(remote.iter().cloned());
    for browser in order {
        let browser = browser.as_str();
        match availability(browser) {
            Availability::HasPlatform => {
                let reason = if passed_over.is_empty() {
                    format!("{}; {browser} has {platform}", pref.rule)
                } else {
                    format!("{}; {}; chose {browser}, which has {platform}", pref.rule, passed_over.join("; "))
                };
                return Selection { browser: Some(browser.to_string()), reason };
            }
            Availability::LacksPlatform(why) => passed_over.push(format!("{browser} lacks {platform} ({why})")),
            Availability::NotInstalled(why) => passed_over.push(format!("{browser}: not installed ({why})")),
            Availability::Failed(why) => passed_over.push(format!("{browser} failed to start ({why})")),
        }
    }
    Selection { browser: None, reason: format!("{}; {}; no browser has {platform}", pref.rule, passed_over.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Availability::*;

    #[test]
    fn the_seed_table_case_by_case() {
        let cases = [
            ("audio", "webgpu", "firefox"),
            ("text_embedding", "webnn", "edge"),
            ("text", "webnn", "edge"),
            ("text_generation", "webnn", "edge"),
            ("vision", "webgpu", "chrome"),
            ("multimodal", "webgpu", "chrome"),
            ("multimodal", "webnn", "chrome"),
            ("multimodal", "wasm", "chrome"),
            ("vision", "webnn", "edge"),
            ("audio", "webnn", "edge"),
            ("text_embedding", "webgpu", "chrome"),
            ("audio", "wasm", "chrome"),
        ];
        for (model_type, platform, browser) in cases {
            assert_eq!(preferred(model_type, platform).browser, browser, "{model_type} on {platform}");
        }
    }

    #[test]
    fn preferred_browser_present_with_the_platform_wins() {
        let s = choose("text_embedding", "webnn", &[], |b| if b == "edge" { HasPlatform } else { panic!("asked {b}") });
        assert_eq!(s.browser.as_deref(), Some("edge"));
        assert_eq!(s.reason, "text on webnn prefers edge; edge has webnn");
    }

    #[test]
    fn absent_edge_for_webnn_falls_to_the_browser_that_has_it() {
        // This machine: no Edge or Chrome; Debian Chromium lacks WebNN; headless-shell has it.
        let s = choose("text_embedding", "webnn", &[], |b| match b {
            "edge" | "chrome" => NotInstalled("searched /opt".into()),
            "chromium" => LacksPlatform("NotSupportedError".into()),
            "headless-shell" => HasPlatform,
            other => panic!("asked {other}"),
        });
        assert_eq!(s.browser.as_deref(), Some("headless-shell"));
        assert!(s.reason.starts_with("text on webnn prefers edge; edge: not installed"), "{}", s.reason);
        assert!(s.reason.contains("chromium lacks webnn (NotSupportedError)"), "{}", s.reason);
        assert!(s.reason.ends_with("chose headless-shell, which has webnn"), "{}", s.reason);
    }

    #[test]
    fn audio_on_webgpu_says_why_firefox_was_passed_over() {
        let s = choose("audio", "webgpu", &[], |b| match b {
            "firefox" => LacksPlatform("no adapter".into()),
            "chrome" | "edge" => NotInstalled("searched".into()),
            "chromium" => HasPlatform,
            other => panic!("asked {other}"),
        });
        assert_eq!(s.browser.as_deref(), Some("chromium"));
        assert!(
            s.reason.starts_with("audio on webgpu prefers firefox; firefox lacks webgpu (no adapter)"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn vision_on_webgpu_substitutes_chromium_for_chrome() {
        let s = choose("vision", "webgpu", &[], |b| match b {
            "chrome" | "edge" => NotInstalled("searched".into()),
            "chromium" => HasPlatform,
            other => panic!("asked {other}"),
        });
        assert_eq!(s.browser.as_deref(), Some("chromium"));
    }

    #[test]
    fn a_browser_that_fails_to_start_is_passed_over() {
        let s = choose("multimodal", "wasm", &[], |b| match b {
            "chrome" => Failed("crashed at launch".into()),
            _ => HasPlatform,
        });
        assert_eq!(s.browser.as_deref(), Some("edge"));
        assert!(s.reason.contains("chrome failed to start (crashed at launch)"));
    }

    #[test]
    fn a_remote_slot_is_chosen_when_no_local_browser_has_the_platform() {
        let remote = vec!["grid:lab-rtx".to_string()];
        let s = choose("vision", "webnn", &remote, |b| {
            if b == "grid:lab-rtx" {
                HasPlatform
            } else {
                LacksPlatform("no".into())
            }
        });
        assert_eq!(s.browser.as_deref(), Some("grid:lab-rtx"));
        assert!(
            s.reason.contains("firefox lacks webnn") && s.reason.ends_with("chose grid:lab-rtx, which has webnn"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn no_browser_with_the_platform_is_reported_not_invented() {
        let s = choose("text", "webnn", &[], |_| LacksPlatform("no".into()));
        assert_eq!(s.browser, None);
        assert!(s.reason.ends_with("no browser has webnn"), "{}", s.reason);
    }
}
